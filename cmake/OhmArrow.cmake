# Apache Arrow / Parquet C++ for the datasets module, from PyPI's pyarrow wheel (docs/datasets.md).
#
# Debian 12 packages no Arrow; the wheel ships the C++ headers (pyarrow/include) and the shared
# libraries (libarrow.so.<ABI>, libparquet.so.<ABI>) built with the new libstdc++ ABI. We ask the
# Python that has pyarrow installed (OHM_ARROW_PYTHON, default build/hub-venv from
# scripts/hub-client-venv.sh) where they are, and link the versioned files by full path (the wheel
# has no unversioned .so symlinks); the build RPATH points at the wheel's directory.
#
#   OHM_DATASETS=AUTO (default)  build the datasets module when pyarrow is found
#   OHM_DATASETS=ON              fail when it is not found
#   OHM_DATASETS=OFF             never (the aarch64 cross build: no wheel for the target)
# Result: OHM_HAVE_ARROW (TRUE/FALSE) and the imported target ohm_arrow (libarrow,
# libarrow_compute for filter/take, libparquet).
set(OHM_DATASETS AUTO CACHE STRING "Build the datasets module on Arrow C++ from pyarrow (AUTO|ON|OFF)")
set_property(CACHE OHM_DATASETS PROPERTY STRINGS AUTO ON OFF)
set(OHM_ARROW_PYTHON "${PROJECT_SOURCE_DIR}/build/hub-venv/bin/python" CACHE FILEPATH
    "Python interpreter with pyarrow installed (its wheel provides Arrow C++)")
set(OHM_HAVE_ARROW FALSE)

function(_ohm_find_arrow)
  if(CMAKE_CROSSCOMPILING OR NOT EXISTS "${OHM_ARROW_PYTHON}")
    set(_why "no ${OHM_ARROW_PYTHON} (run scripts/hub-client-venv.sh)" PARENT_SCOPE)
    return()
  endif()
  execute_process(
    COMMAND "${OHM_ARROW_PYTHON}" -c
            "import pyarrow as p; print(p.__version__); print(p.get_include()); print(p.get_library_dirs()[0])"
    OUTPUT_VARIABLE _out ERROR_QUIET RESULT_VARIABLE _rc OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT _rc EQUAL 0)
    set(_why "${OHM_ARROW_PYTHON} cannot import pyarrow (run scripts/hub-client-venv.sh)" PARENT_SCOPE)
    return()
  endif()
  string(REPLACE "\n" ";" _out "${_out}")
  list(GET _out 0 _ver)
  list(GET _out 1 _inc)
  list(GET _out 2 _libdir)
  # libarrow.so.2600 for pyarrow 26.0.x: the SONAME the wheel's own modules link against.
  string(REGEX MATCH "^([0-9]+)\\.([0-9]+)" _m "${_ver}")
  math(EXPR _abi "${CMAKE_MATCH_1} * 100 + ${CMAKE_MATCH_2}")
  foreach(_lib arrow arrow_compute parquet)
    set(_path "${_libdir}/lib${_lib}.so.${_abi}")
    if(NOT EXISTS "${_path}")
      set(_why "pyarrow ${_ver} has no ${_path}" PARENT_SCOPE)
      return()
    endif()
    set(_${_lib} "${_path}")
  endforeach()
  if(NOT EXISTS "${_inc}/arrow/api.h" OR NOT EXISTS "${_inc}/parquet/arrow/reader.h")
    set(_why "pyarrow ${_ver} has no C++ headers in ${_inc}" PARENT_SCOPE)
    return()
  endif()
  foreach(_lib arrow arrow_compute parquet)
    add_library(ohm_${_lib}_lib SHARED IMPORTED GLOBAL)
    set_target_properties(ohm_${_lib}_lib PROPERTIES IMPORTED_LOCATION "${_${_lib}}"
                                                     IMPORTED_SONAME "lib${_lib}.so.${_abi}")
  endforeach()
  add_library(ohm_arrow INTERFACE IMPORTED GLOBAL)
  # SYSTEM: Arrow's headers are not -Wall -Wextra -Wpedantic clean.
  set_target_properties(ohm_arrow PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_inc}"
                                             INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${_inc}")
  target_link_libraries(ohm_arrow INTERFACE ohm_parquet_lib ohm_arrow_compute_lib ohm_arrow_lib)
  # Executables find the wheel's libraries where it is installed (also after `cmake --install`).
  target_link_options(ohm_arrow INTERFACE "LINKER:-rpath,${_libdir}")
  set(OHM_HAVE_ARROW TRUE PARENT_SCOPE)
  set(OHM_ARROW_VERSION "${_ver}" PARENT_SCOPE)
  set(OHM_ARROW_LIBDIR "${_libdir}" PARENT_SCOPE)
endfunction()

if(NOT OHM_DATASETS STREQUAL "OFF")
  _ohm_find_arrow()
  if(OHM_HAVE_ARROW)
    message(STATUS "datasets: Arrow C++ ${OHM_ARROW_VERSION} from pyarrow (${OHM_ARROW_LIBDIR})")
  elseif(OHM_DATASETS STREQUAL "ON")
    message(FATAL_ERROR "OHM_DATASETS=ON but Arrow C++ was not found: ${_why}")
  else()
    message(STATUS "datasets: Arrow C++ not found (${_why}); `ohm datasets` is left out")
  endif()
endif()
