# SpawnGenerate.cmake - spawn_generate(): .proto contracts -> typed Spawn
# clients and actor skeletons, built into a target.
#
#   include(SpawnGenerate)          # in this tree: cmake/; installed:
#                                   # <prefix>/lib/cmake/spawn/
#   add_executable(my-host host.c)
#   spawn_generate(TARGET my-host
#                  PROTOS counter/counter.proto   # relative to PROTO_ROOT
#                  [PROTO_ROOT dir]               # default: CMAKE_CURRENT_SOURCE_DIR
#                  [IMPORT_DIRS dir...]           # more protoc -I directories
#                  [LANGS c [python ts]]          # default: c
#                  [OUT_DIR dir]                  # default: CMAKE_CURRENT_BINARY_DIR/spawn-gen
#                  [OPTIONS key=value...]         # more plugin parameters (c_prefix=app_)
#                  [NO_LINK])                     # do not link libspawn
#
# For each contract, one protoc run writes, with LANGS c, the protoc-c code
# (X.pb-c.c/.h) and the Spawn code (X.spawn.c/.h) into OUT_DIR; the .c files
# are added to TARGET, OUT_DIR becomes a public include directory, and
# TARGET links libspawn plus spawn_contract_proto (the protoc-c code of
# spawn/actors/extensions.proto that every contract imports). Other
# languages are generated into OUT_DIR as well (their files are not
# compiled; with LANGS python, protoc's X_pb2.py is written beside them, and
# the TypeScript output is self-contained). Regenerates when a contract, the plugin or its templates
# change. docs/sdk/codegen.md has the details.
#
# Tools: protoc (PROTOC), protoc-gen-c (PROTOC_GEN_C), and protoc-gen-spawn:
# the in-tree target when there is one, else SPAWN_PROTOC_GEN_SPAWN (found
# next to this file's installation, then on PATH).

set(_SPAWN_GENERATE_DIR ${CMAKE_CURRENT_LIST_DIR})

# The folder holding spawn/actors/extensions.proto: proto/ in this source
# tree, share/spawn/proto in an installation of this file
# (<prefix>/lib/cmake/spawn or <prefix>/lib/<multiarch>/cmake/spawn).
find_path(SPAWN_PROTO_DIR spawn/actors/extensions.proto
  PATHS ${_SPAWN_GENERATE_DIR}/../proto
        ${_SPAWN_GENERATE_DIR}/../../../share/spawn/proto
        ${_SPAWN_GENERATE_DIR}/../../../../share/spawn/proto
  NO_DEFAULT_PATH)
find_path(SPAWN_PROTOBUF_INCLUDE_DIR google/protobuf/descriptor.proto
  PATHS /usr/include /usr/local/include)
find_program(PROTOC protoc)
find_program(PROTOC_GEN_C protoc-gen-c)

# _spawn_contract_proto() makes target spawn_contract_proto when the
# including project has none (outside this tree): the protoc-c code of the
# Spawn option protos, compiled once per build tree.
function(_spawn_contract_proto)
  if(TARGET spawn_contract_proto)
    return()
  endif()
  set(gen ${CMAKE_BINARY_DIR}/spawn-contract-gen)
  set(srcs)
  foreach(p spawn/actors/extensions.proto spawn/actors/actor.proto
            google/protobuf/descriptor.proto google/protobuf/timestamp.proto
            google/protobuf/any.proto)
    string(REGEX REPLACE "\\.proto$" "" base ${p})
    list(APPEND srcs ${gen}/${base}.pb-c.c)
  endforeach()
  add_custom_command(
    OUTPUT ${srcs}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${gen}
    COMMAND ${PROTOC} -I${SPAWN_PROTO_DIR} -I${SPAWN_PROTOBUF_INCLUDE_DIR}
            --plugin=protoc-gen-c=${PROTOC_GEN_C} --c_out=${gen}
            spawn/actors/extensions.proto spawn/actors/actor.proto
            google/protobuf/descriptor.proto google/protobuf/timestamp.proto
            google/protobuf/any.proto
    COMMENT "protoc-c Spawn option protos")
  add_library(spawn_contract_proto STATIC ${srcs})
  set_target_properties(spawn_contract_proto PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_compile_options(spawn_contract_proto PRIVATE -w)
  target_include_directories(spawn_contract_proto PUBLIC ${gen})
  find_package(PkgConfig REQUIRED)
  pkg_check_modules(SPAWN_PROTOBUFC REQUIRED IMPORTED_TARGET libprotobuf-c)
  target_link_libraries(spawn_contract_proto PUBLIC PkgConfig::SPAWN_PROTOBUFC)
endfunction()

function(spawn_generate)
  cmake_parse_arguments(G "NO_LINK" "TARGET;PROTO_ROOT;OUT_DIR"
                        "PROTOS;IMPORT_DIRS;LANGS;OPTIONS" ${ARGN})
  if(NOT G_TARGET OR NOT G_PROTOS)
    message(FATAL_ERROR "spawn_generate: TARGET and PROTOS are required")
  endif()
  if(NOT G_PROTO_ROOT)
    set(G_PROTO_ROOT ${CMAKE_CURRENT_SOURCE_DIR})
  endif()
  if(NOT G_OUT_DIR)
    set(G_OUT_DIR ${CMAKE_CURRENT_BINARY_DIR}/spawn-gen)
  endif()
  if(NOT G_LANGS)
    set(G_LANGS c)
  endif()
  foreach(tool PROTOC PROTOC_GEN_C SPAWN_PROTO_DIR SPAWN_PROTOBUF_INCLUDE_DIR)
    if(NOT ${tool})
      message(FATAL_ERROR "spawn_generate: ${tool} not found")
    endif()
  endforeach()

  # The plugin and what its output depends on.
  set(deps)
  if(TARGET protoc-gen-spawn)
    set(plugin $<TARGET_FILE:protoc-gen-spawn>)
    list(APPEND deps protoc-gen-spawn)
    foreach(lang ${G_LANGS})
      file(GLOB tpl CONFIGURE_DEPENDS ${_SPAWN_GENERATE_DIR}/../sdk-templates/${lang}/*)
      list(APPEND deps ${tpl})
    endforeach()
  else()
    find_program(SPAWN_PROTOC_GEN_SPAWN protoc-gen-spawn
      HINTS ${_SPAWN_GENERATE_DIR}/../../../bin ${_SPAWN_GENERATE_DIR}/../../../../bin)
    if(NOT SPAWN_PROTOC_GEN_SPAWN)
      message(FATAL_ERROR "spawn_generate: protoc-gen-spawn not found")
    endif()
    set(plugin ${SPAWN_PROTOC_GEN_SPAWN})
    list(APPEND deps ${plugin})
  endif()

  string(REPLACE ";" "+" lang_param "${G_LANGS}")
  set(params "lang=${lang_param}")
  foreach(o ${G_OPTIONS})
    string(APPEND params ",${o}")
  endforeach()
  set(includes -I${G_PROTO_ROOT})
  foreach(d ${G_IMPORT_DIRS})
    list(APPEND includes -I${d})
  endforeach()
  list(APPEND includes -I${SPAWN_PROTO_DIR} -I${SPAWN_PROTOBUF_INCLUDE_DIR})

  set(with_c FALSE)
  if("c" IN_LIST G_LANGS)
    set(with_c TRUE)
  endif()
  set(c_sources)
  set(stamps)
  foreach(p ${G_PROTOS})
    if(IS_ABSOLUTE ${p})
      file(RELATIVE_PATH rel ${G_PROTO_ROOT} ${p})
    else()
      set(rel ${p})
    endif()
    string(REGEX REPLACE "\\.proto$" "" base ${rel})
    string(MAKE_C_IDENTIFIER ${rel} stamp_name)
    set(stamp ${G_OUT_DIR}/.spawn-gen-${stamp_name}.stamp)
    set(outputs ${stamp})
    set(c_out)
    if(with_c)
      set(c_out --plugin=protoc-gen-c=${PROTOC_GEN_C} --c_out=${G_OUT_DIR})
      list(APPEND outputs ${G_OUT_DIR}/${base}.pb-c.c ${G_OUT_DIR}/${base}.pb-c.h
                          ${G_OUT_DIR}/${base}.spawn.c ${G_OUT_DIR}/${base}.spawn.h)
      list(APPEND c_sources ${G_OUT_DIR}/${base}.pb-c.c ${G_OUT_DIR}/${base}.spawn.c)
      set_source_files_properties(${G_OUT_DIR}/${base}.pb-c.c PROPERTIES COMPILE_OPTIONS -w)
    endif()
    set(py_out)
    if("python" IN_LIST G_LANGS)
      # The generated Python imports protoc's own X_pb2 module: write it too.
      set(py_out --python_out=${G_OUT_DIR})
    endif()
    add_custom_command(
      OUTPUT ${outputs}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${G_OUT_DIR}
      COMMAND ${PROTOC} ${includes} ${c_out} ${py_out}
              --plugin=protoc-gen-spawn=${plugin} --spawn_out=${params}:${G_OUT_DIR}
              ${G_PROTO_ROOT}/${rel}
      COMMAND ${CMAKE_COMMAND} -E touch ${stamp}
      DEPENDS ${G_PROTO_ROOT}/${rel} ${deps}
      COMMENT "protoc-gen-spawn (${lang_param}) ${rel}"
      VERBATIM)
    list(APPEND stamps ${stamp})
  endforeach()

  add_custom_target(${G_TARGET}_spawn_gen DEPENDS ${stamps})
  add_dependencies(${G_TARGET} ${G_TARGET}_spawn_gen)
  if(with_c)
    target_sources(${G_TARGET} PRIVATE ${c_sources})
    target_include_directories(${G_TARGET} PUBLIC ${G_OUT_DIR})
    _spawn_contract_proto()
    target_link_libraries(${G_TARGET} PUBLIC spawn_contract_proto)
    if(NOT G_NO_LINK)
      if(TARGET spawn)
        target_link_libraries(${G_TARGET} PUBLIC spawn)
      else()
        find_package(PkgConfig REQUIRED)
        pkg_check_modules(SPAWN REQUIRED IMPORTED_TARGET spawn)
        target_link_libraries(${G_TARGET} PUBLIC PkgConfig::SPAWN)
      endif()
    endif()
  endif()
endfunction()
