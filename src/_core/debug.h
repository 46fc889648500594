/* Build mode of the core. setup.py defines PYACTORS_DEBUG=1 when the build environment has
   PYACTORS_DEBUG=1; debug builds keep resource counters that the test suite checks. */
#ifndef PYACTORS_DEBUG
#define PYACTORS_DEBUG 0
#endif
