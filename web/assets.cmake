# web/assets.cmake: the web UI's assets (web/*.html|css|js|svg) compiled into quorumd.
# Included from the top CMakeLists.txt; sets UI_ASSETS_C, the generated C file that
# daemon/ui.c serves from (web/embed.cmake writes it at build time, no xxd needed).
file(GLOB UI_ASSET_FILES CONFIGURE_DEPENDS
  ${CMAKE_SOURCE_DIR}/web/*.html ${CMAKE_SOURCE_DIR}/web/*.css
  ${CMAKE_SOURCE_DIR}/web/*.js ${CMAKE_SOURCE_DIR}/web/*.svg)
list(SORT UI_ASSET_FILES)
set(UI_ASSETS_C ${CMAKE_BINARY_DIR}/ui_assets.c)
add_custom_command(
  OUTPUT ${UI_ASSETS_C}
  COMMAND ${CMAKE_COMMAND} -DOUT=${UI_ASSETS_C} "-DFILES=${UI_ASSET_FILES}"
          -P ${CMAKE_SOURCE_DIR}/web/embed.cmake
  DEPENDS ${UI_ASSET_FILES} ${CMAKE_SOURCE_DIR}/web/embed.cmake
  COMMENT "Embedding the web UI's assets"
  VERBATIM)
