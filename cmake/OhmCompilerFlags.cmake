# Warning and sanitizer flags shared by every ohm target (via the ohm_flags interface target).
add_library(ohm_flags INTERFACE)
target_compile_options(ohm_flags INTERFACE -Wall -Wextra -Wpedantic -Wno-missing-field-initializers)
if(OHM_SANITIZE)
  target_compile_options(ohm_flags INTERFACE -fsanitize=${OHM_SANITIZE} -fno-omit-frame-pointer
                                             -fno-sanitize-recover=undefined)
  target_link_options(ohm_flags INTERFACE -fsanitize=${OHM_SANITIZE})
endif()
if(OHM_WERROR)
  target_compile_options(ohm_flags INTERFACE -Werror)
endif()
