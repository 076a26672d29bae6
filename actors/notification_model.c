#include "actors/notification_model.h"
#include <stdlib.h>
#include <string.h>
#include "chain/rfc3339.h"

json_t *notification_to_json(const PGresult *res, int row, int first_col)
{
    char created[CHAIN_RFC3339_SIZE];
    int c = first_col;
    json_t *created_json =
        chain_rfc3339_format(atoll(PQgetvalue(res, row, c + 5)), created) == CHAIN_OK
            ? json_string(created)
            : json_null();
    /* libpq renders booleans as "t" and "f" */
    bool read = strcmp(PQgetvalue(res, row, c + 4), "t") == 0;
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:o}", "id", PQgetvalue(res, row, c), "type",
                     PQgetvalue(res, row, c + 1), "title", PQgetvalue(res, row, c + 2), "message",
                     PQgetvalue(res, row, c + 3), "read", read, "createdAt", created_json);
}

bool notification_type_valid(const char *type)
{
    static const char *const types[] = {
        NOTIFICATION_EXECUTION_SUCCEEDED, NOTIFICATION_EXECUTION_DELAYED,
        NOTIFICATION_EXECUTION_FAILED, NOTIFICATION_LOW_BUFFER, NOTIFICATION_WEEKLY_SUMMARY};
    for (size_t i = 0; i != sizeof(types) / sizeof(types[0]); ++i)
        if (strcmp(type, types[i]) == 0)
            return true;
    return false;
}
