# Finds every dependency of the auxl::auxl target.  Used twice: by our own build and by the
# installed auxlConfig.cmake (through find_dependency), so a consumer's find_package(auxl) finds
# exactly what the target links, and a missing dependency is a CMake error naming it.
if(NOT DEFINED _auxl_find)
  set(_auxl_find find_package)
endif()

# OpenBLAS provides the BLAS; prefer it when several are installed (Debian alternatives).
if(NOT DEFINED BLA_VENDOR)
  set(BLA_VENDOR OpenBLAS)
endif()

cmake_language(CALL ${_auxl_find} Eigen3 3.4 REQUIRED NO_MODULE)
cmake_language(CALL ${_auxl_find} xtl REQUIRED)
cmake_language(CALL ${_auxl_find} xtensor REQUIRED)
cmake_language(CALL ${_auxl_find} BLAS REQUIRED)
cmake_language(CALL ${_auxl_find} xtensor-blas REQUIRED)
cmake_language(CALL ${_auxl_find} Boost 1.74 REQUIRED)
cmake_language(CALL ${_auxl_find} ZLIB REQUIRED)
# std::thread: conv2d's sample workers on the OpenBLAS backend (core/worker_pool.hpp).
set(THREADS_PREFER_PTHREAD_FLAG ON)
cmake_language(CALL ${_auxl_find} Threads REQUIRED)
