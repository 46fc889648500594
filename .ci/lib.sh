# Shared by the CI scripts (sourced, not run).

# The CPython versions CI builds and tests: pyproject's requires-python to the newest supported.
CI_VERSIONS=(3.10 3.11 3.12 3.13)

find_python() {  # the python3.X of PATH, else of pyenv's versions
    local version=$1 found
    for found in "$(command -v "python$version" || true)" \
                 "$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*/bin/"python$version" \
                    2>/dev/null | sort -V | tail -n 1)"; do
        if [ -n "$found" ] && "$found" -c 'import sys' >/dev/null 2>&1; then
            echo "$found"
            return
        fi
    done
}

wheel_for() {  # the wheel dist/ holds for CPython X.Y (built by .ci/wheels), or nothing
    local tag="cp${1/./}" wheel
    for wheel in dist/pyactors-*-"$tag"-"$tag"-*.whl; do
        if [ -f "$wheel" ]; then
            echo "$wheel"
            return
        fi
    done
}
