# Generates a C file holding every store/migrations/NNN_name.sql as a byte array, so that the
# binary carries its schema and needs no files at run time. Run at configure time: the glob is
# CONFIGURE_DEPENDS so that adding a migration re-runs it, and every file is a configure
# dependency so that editing one does too (a glob notices only files added or removed).
function(intentd_embed_migrations out_file)
    file(GLOB sql_files CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/migrations/*.sql)
    list(SORT sql_files)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${sql_files})
    set(arrays "")
    set(table "")
    set(count 0)
    foreach(path ${sql_files})
        get_filename_component(base ${path} NAME_WE)
        if(NOT base MATCHES "^([0-9]+)_([a-z0-9_]+)$")
            message(FATAL_ERROR "migration file name must be NNN_name.sql: ${base}")
        endif()
        math(EXPR version "${CMAKE_MATCH_1}")
        set(name ${CMAKE_MATCH_2})
        file(READ ${path} hex HEX)
        string(REGEX REPLACE "(..)" "0x\\1," bytes "${hex}")
        string(APPEND arrays "static const char sql_${count}[] = {${bytes}0x00};\n")
        string(APPEND table "    {${version}, \"${name}\", sql_${count}},\n")
        math(EXPR count "${count} + 1")
    endforeach()
    file(CONFIGURE OUTPUT ${out_file} CONTENT
"/* generated from store/migrations by store/embed_migrations.cmake: do not edit */
#include \"store/migrate.h\"
${arrays}
const store_migration_t store_migrations[] = {
${table}    {0, NULL, NULL},
};
const size_t store_migrations_count = ${count};
")
endfunction()
