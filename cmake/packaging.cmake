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
    "Meridian real-time WebSocket edge: shared files\n The meridian system user, /etc/meridian/regions.json (the regions file),\n meridian-regions and the operations guide.")
set(CPACK_DEBIAN_COMMON_PACKAGE_DEPENDS "adduser")
set(CPACK_COMPONENT_RELAY_DESCRIPTION
    "Meridian relay daemon\n Holds client WebSockets, fans messages out to room members and\n replicates them to every region through NATS JetStream.")
set(CPACK_COMPONENT_CONTROL_DESCRIPTION
    "Meridian control plane\n Persists every region's messages to PostgreSQL, assigns per-room\n sequence numbers, serves history and a server-side publish API.")
set(CPACK_COMPONENT_HEALTHCHECK_DESCRIPTION
    "Meridian health-check agent\n Probes every relay of every region, agrees on region health with the\n other agents and moves geo-DNS away from a failing region.")
set(CPACK_COMPONENT_CLI_DESCRIPTION "Meridian command-line client\n Tokens, publishing, history and region status from the shell.")
foreach(_d IN LISTS _mr_daemons)
  string(TOUPPER ${_d} _D)
  set(CPACK_DEBIAN_${_D}_PACKAGE_DEPENDS "meridian-common (= ${_mr_full_version})")
endforeach()

include(CPack)
