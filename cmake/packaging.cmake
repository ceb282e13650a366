# Debian packages (CPack DEB, one package per component):
#
#   meridian-common       user `meridian`, /etc/meridian/regions.json, meridian-regions,
#                         secret generation, operations guide
#   meridian-relay        relay daemon + systemd unit + /etc/meridian/relay.json
#   meridian-control      control plane + unit + /etc/meridian/control.json
#   meridian-healthcheck  health agent + unit + /etc/meridian/healthcheck.json
#   meridian-cli          meridian-cli
#
# Build them with scripts/package. Only targets that exist are packaged, so
# the packaging keeps working while daemons are being written. Files under
# /etc are listed as conffiles (dpkg keeps local edits on upgrade).

set(MERIDIAN_PKG_DIR ${CMAKE_CURRENT_LIST_DIR}/../packaging)
get_filename_component(MERIDIAN_PKG_DIR ${MERIDIAN_PKG_DIR} ABSOLUTE)

# Components (and packages) in dependency order. A daemon component exists only
# when its target does.
set(_mr_components common)
set(_mr_daemons "")
foreach(_d relay control healthcheck)
  if(TARGET meridian-${_d})
    list(APPEND _mr_components ${_d})
    list(APPEND _mr_daemons ${_d})
  endif()
endforeach()
if(TARGET meridian-cli)
  list(APPEND _mr_components cli)
endif()

set(_mr_version "${PROJECT_VERSION}")
set(_mr_release 1)
set(_mr_full_version "${_mr_version}-${_mr_release}")
set(_mr_ctrl ${CMAKE_CURRENT_BINARY_DIR}/packaging-control)

# meridian-common: everything the daemons share.
if(TARGET meridian-regions)
  install(TARGETS meridian-regions RUNTIME DESTINATION bin COMPONENT common)
endif()
install(FILES ${MERIDIAN_PKG_DIR}/config/regions.json DESTINATION /etc/meridian COMPONENT common)
install(PROGRAMS ${MERIDIAN_PKG_DIR}/debian/common/meridian-init-secrets
        DESTINATION lib/meridian COMPONENT common)
install(FILES ${CMAKE_CURRENT_LIST_DIR}/../docs/operations.md
        DESTINATION share/doc/meridian-common COMPONENT common OPTIONAL)
install(FILES ${CMAKE_CURRENT_LIST_DIR}/../regions/README.md
        DESTINATION share/doc/meridian-common RENAME regions-file.md COMPONENT common OPTIONAL)
set(_mr_common_conffiles "/etc/meridian/regions.json\n")

if(TARGET meridian-control)
  # Backup and restore of the control plane's database (docs/operations.md, section 8).
  install(PROGRAMS ${MERIDIAN_PKG_DIR}/tools/meridian-db DESTINATION lib/meridian COMPONENT control)
  set(CPACK_DEBIAN_CONTROL_PACKAGE_RECOMMENDS "postgresql-client")
endif()
foreach(_d IN LISTS _mr_daemons)
  install(TARGETS meridian-${_d} RUNTIME DESTINATION bin COMPONENT ${_d})
  install(FILES ${MERIDIAN_PKG_DIR}/systemd/meridian-${_d}.service
          DESTINATION /lib/systemd/system COMPONENT ${_d})
  install(FILES ${MERIDIAN_PKG_DIR}/config/${_d}.json DESTINATION /etc/meridian COMPONENT ${_d})
endforeach()
if(TARGET meridian-cli)
  install(TARGETS meridian-cli RUNTIME DESTINATION bin COMPONENT cli)
endif()

# Every package: the machine-readable copyright file and the Debian
# changelog (compressed as policy wants, without a timestamp so builds are
# reproducible), under /usr/share/doc/<package>/.
set(_mr_changelog_gz ${CMAKE_CURRENT_BINARY_DIR}/packaging-doc/changelog.Debian.gz)
file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/packaging-doc ${CMAKE_CURRENT_BINARY_DIR}/man)
add_custom_command(
  OUTPUT ${_mr_changelog_gz}
  COMMAND sh -c "gzip -9nc \"$1\" > \"$2\"" sh ${MERIDIAN_PKG_DIR}/debian/changelog
          ${_mr_changelog_gz}
  DEPENDS ${MERIDIAN_PKG_DIR}/debian/changelog
  COMMENT "Compressing the Debian changelog" VERBATIM)
set(_mr_pkg_doc_outputs ${_mr_changelog_gz})
foreach(_c IN LISTS _mr_components)
  install(FILES ${MERIDIAN_PKG_DIR}/debian/copyright DESTINATION share/doc/meridian-${_c}
          COMPONENT ${_c})
  install(FILES ${_mr_changelog_gz} DESTINATION share/doc/meridian-${_c} COMPONENT ${_c})
  # The one lintian warning that does not apply: these packages are not
  # uploaded to Debian, so the first changelog entry closes no ITP bug.
  file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/packaging-doc/lintian-${_c}
       "# Not a Debian upload: there is no ITP bug to close.\n"
       "meridian-${_c}: initial-upload-closes-no-bugs [usr/share/doc/meridian-${_c}/changelog.Debian.gz:1]\n")
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/packaging-doc/lintian-${_c}
          DESTINATION share/lintian/overrides RENAME meridian-${_c} COMPONENT ${_c})
endforeach()

# Man pages, made at build time by help2man from each program's own --help
# and --version, so a page can never say something the binary does not.
find_program(MERIDIAN_HELP2MAN help2man)
set(_mr_man_names
    "meridian-relay|Meridian relay: the real-time WebSocket edge"
    "meridian-control|Meridian control plane: history, sequence numbers and the publish API"
    "meridian-healthcheck|Meridian health-check agent: region health and geo-DNS failover"
    "meridian-regions|check and render Meridian's regions file"
    "meridian-cli|Meridian command-line client")
if(MERIDIAN_HELP2MAN)
  foreach(_entry IN LISTS _mr_man_names)
    string(REPLACE "|" ";" _parts "${_entry}")
    list(GET _parts 0 _prog)
    list(GET _parts 1 _what)
    if(NOT TARGET ${_prog})
      continue()
    endif()
    set(_page ${CMAKE_CURRENT_BINARY_DIR}/man/${_prog}.1)
    add_custom_command(
      OUTPUT ${_page}.gz
      # Leak checks are for the tests: --help of a sanitizer build must just print.
      COMMAND ${CMAKE_COMMAND} -E env ASAN_OPTIONS=detect_leaks=0 ${MERIDIAN_HELP2MAN} --no-info --section=1 --name=${_what}
              --include=${MERIDIAN_PKG_DIR}/man/see-also.h2m --output=${_page} $<TARGET_FILE:${_prog}>
      COMMAND gzip -9nf ${_page}
      DEPENDS ${_prog} ${MERIDIAN_PKG_DIR}/man/see-also.h2m
      COMMENT "Man page of ${_prog} from its --help" VERBATIM)
    list(APPEND _mr_pkg_doc_outputs ${_page}.gz)
    if(_prog STREQUAL "meridian-regions")
      set(_comp common)
    else()
      string(REPLACE "meridian-" "" _comp ${_prog})
    endif()
    install(FILES ${_page}.gz DESTINATION share/man/man1 COMPONENT ${_comp})
  endforeach()
else()
  message(WARNING "help2man not found: the packages get no man pages (scripts/deps installs it)")
endif()
add_custom_target(meridian_package_docs ALL DEPENDS ${_mr_pkg_doc_outputs})

# Maintainer scripts and conffiles, per component, copied into the build tree
# so that CPack gets one directory per package.
foreach(_c IN LISTS _mr_components)
  set(_dir ${_mr_ctrl}/${_c})
  file(MAKE_DIRECTORY ${_dir})
  set(_extra "")
  foreach(_s postinst prerm postrm)
    if(EXISTS ${MERIDIAN_PKG_DIR}/debian/${_c}/${_s})
      configure_file(${MERIDIAN_PKG_DIR}/debian/${_c}/${_s} ${_dir}/${_s} COPYONLY
                     FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
                                      GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
      list(APPEND _extra ${_dir}/${_s})
    endif()
  endforeach()
  if(_c STREQUAL "common")
    file(WRITE ${_dir}/conffiles "${_mr_common_conffiles}")
    list(APPEND _extra ${_dir}/conffiles)
  elseif(NOT _c STREQUAL "cli")
    file(WRITE ${_dir}/conffiles "/etc/meridian/${_c}.json\n")
    list(APPEND _extra ${_dir}/conffiles)
  endif()
  string(TOUPPER ${_c} _C)
  set(CPACK_DEBIAN_${_C}_PACKAGE_CONTROL_EXTRA "${_extra}")
  set(CPACK_DEBIAN_${_C}_PACKAGE_NAME meridian-${_c})
  set(CPACK_DEBIAN_${_C}_FILE_NAME "meridian-${_c}_${_mr_full_version}_amd64.deb")
endforeach()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME meridian)
set(CPACK_PACKAGE_VENDOR "Meridian")
set(CPACK_PACKAGE_CONTACT "Meridian maintainers <maintainers@meridian.invalid>")
set(CPACK_PACKAGE_VERSION ${_mr_version})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL ${_mr_components})
set(CPACK_DEBIAN_PACKAGE_RELEASE ${_mr_release})
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE amd64)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://meridian.invalid/")
# Library dependencies come from dpkg-shlibdeps (dpkg-dev).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_COMPONENT_COMMON_DESCRIPTION
    "Meridian real-time WebSocket edge: shared files\nThe meridian system user, /etc/meridian/regions.json (the regions file),\nmeridian-regions and the operations guide.")
set(CPACK_DEBIAN_COMMON_PACKAGE_DEPENDS "adduser")
set(CPACK_COMPONENT_RELAY_DESCRIPTION
    "Meridian relay daemon\nHolds client WebSockets, fans messages out to room members and\nreplicates them to every region through NATS JetStream.")
set(CPACK_COMPONENT_CONTROL_DESCRIPTION
    "Meridian control plane\nPersists every region's messages to PostgreSQL, assigns per-room\nsequence numbers, serves history and a server-side publish API.")
set(CPACK_COMPONENT_HEALTHCHECK_DESCRIPTION
    "Meridian health-check agent\nProbes every relay of every region, agrees on region health with the\nother agents and moves geo-DNS away from a failing region.")
set(CPACK_COMPONENT_CLI_DESCRIPTION "Meridian command-line client\nTokens, publishing, history and region status from the shell.")
foreach(_d IN LISTS _mr_daemons)
  string(TOUPPER ${_d} _D)
  set(CPACK_DEBIAN_${_D}_PACKAGE_DEPENDS "meridian-common (= ${_mr_full_version})")
endforeach()
# lws loads its libuv event library as a plugin, only for "event_loop": "libuv"
# (docs/relay.md); without it that setting fails at start with a clear error.
set(CPACK_DEBIAN_RELAY_PACKAGE_RECOMMENDS "libwebsockets-evlib-uv")

include(CPack)
