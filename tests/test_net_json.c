/* Strict JSON bodies: Content-Type, size limit, UTF-8, top-level object, duplicated keys, and
 * the field validator: unknown fields, missing required ones, wrong types, floats where integers
 * are expected, integers beyond int64 named by field, decimal strings, limits, error caps. */
#include <criterion/criterion.h>
#include <string.h>
#include "net/http_util.h"
#include "net/json.h"

#define CT "application/json"

static int parse(const char *body, json_t **out, net_json_errors_t *errs)
{
    return net_json_parse_body(CT, strlen(CT), body, strlen(body), NET_JSON_BODY_LIMIT_DEFAULT, out,
                               errs);
}

/* The message for `field` in `errs`, or NULL. */
static const char *error_for(const net_json_errors_t *errs, const char *field)
{
    for (size_t i = 0; i != errs->count; ++i)
        if (strcmp(errs->items[i].field, field) == 0)
            return errs->items[i].message;
    return NULL;
}

static const net_json_field_t intent_fields[] = {
    {.name = "name", .kind = NET_JSON_STRING, .flags = NET_JSON_REQUIRED, .max_len = 5},
    {.name = "amount", .kind = NET_JSON_DECIMAL, .flags = NET_JSON_REQUIRED},
    {.name = "intervalSeconds", .kind = NET_JSON_INTEGER, .min = 60, .max = 31536000},
    {.name = "maxExecutions", .kind = NET_JSON_INTEGER, .flags = NET_JSON_NULLABLE},
    {.name = "paused", .kind = NET_JSON_BOOLEAN},
    {.name = "constraints", .kind = NET_JSON_OBJECT, .flags = NET_JSON_NULLABLE},
    {.name = "days", .kind = NET_JSON_ARRAY, .max_len = 7},
};
#define N_INTENT (sizeof(intent_fields) / sizeof(intent_fields[0]))

/* Parses `body` (which must parse) and validates it against intent_fields. */
static bool validate(const char *body, net_json_errors_t *errs)
{
    json_t *obj;
    cr_assert_eq(parse(body, &obj, errs), 0, "%s: %s", body, errs->detail);
    bool ok = net_json_validate(obj, intent_fields, N_INTENT, NULL, errs);
    json_decref(obj);
    return ok;
}

Test(net_json, content_type)
{
    static const char *const ok[] = {"application/json",
                                     "Application/JSON",
                                     "application/json; charset=utf-8",
                                     "application/json;charset=UTF-8",
                                     "application/json ; charset=\"utf-8\"",
                                     "application/json  "};
    static const char *const bad[] = {"",
                                      "text/json",
                                      "application/jsonx",
                                      "application/json; charset=latin1",
                                      "application/json; boundary=x",
                                      "application/json; charset=utf-8; q=1",
                                      "application/problem+json",
                                      "application/x-www-form-urlencoded",
                                      "application/json;"};
    for (size_t i = 0; i != sizeof(ok) / sizeof(ok[0]); ++i)
        cr_assert(net_json_content_type_ok(ok[i], strlen(ok[i])), "'%s' refused", ok[i]);
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        cr_assert_not(net_json_content_type_ok(bad[i], strlen(bad[i])), "'%s' accepted", bad[i]);
    net_json_errors_t errs;
    json_t *obj;
    cr_assert_eq(net_json_parse_body(NULL, 0, "{}", 2, 100, &obj, &errs), 415);
    cr_assert_null(obj);
    cr_assert_eq(net_json_parse_body("text/plain", 10, "{}", 2, 100, &obj, &errs), 415);
    cr_assert_neq(errs.detail[0], '\0');
}

Test(net_json, size_limit)
{
    net_json_errors_t errs;
    json_t *obj;
    const char *body = "{\"name\":\"abcdef\"}";
    size_t len = strlen(body);
    cr_assert_eq(net_json_parse_body(CT, strlen(CT), body, len, len, &obj, &errs), 0);
    json_decref(obj);
    cr_assert_eq(net_json_parse_body(CT, strlen(CT), body, len, len - 1, &obj, &errs), 413);
    cr_assert_null(obj);
    cr_assert_not_null(strstr(errs.detail, "larger than"));
}

Test(net_json, body_must_be_one_valid_object)
{
    static const char *const bad[] = {
        "",        "[]",         "42",          "\"x\"",      "null",           "{", "{} {}", "{}x",
        "{'a':1}", "{\"a\":01}", "{\"a\":NaN}", "{\"a\":1,}", "\xef\xbb\xbf{}", /* a BOM is not JSON
                                                                                 */
    };
    net_json_errors_t errs;
    json_t *obj;
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        cr_assert_eq(parse(bad[i], &obj, &errs), 400, "'%s' accepted", bad[i]);
        cr_assert_null(obj);
        cr_assert_neq(errs.detail[0], '\0', "no detail for '%s'", bad[i]);
        cr_assert(net_http_utf8_valid(errs.detail, strlen(errs.detail)));
    }
    cr_assert_eq(parse("[1]", &obj, &errs), 400);
    cr_assert_str_eq(errs.detail, "the body must be a JSON object");
}

Test(net_json, invalid_utf8_nul_and_duplicates_are_refused)
{
    net_json_errors_t errs;
    json_t *obj;
    static const char *const bad_utf8[] = {
        "{\"name\":\"\xc3\"}",         /* truncated sequence */
        "{\"name\":\"\xc0\xaf\"}",     /* overlong '/' */
        "{\"name\":\"\xed\xa0\x80\"}", /* a surrogate */
        "{\"n\xff\":1}",
    };
    for (size_t i = 0; i != sizeof(bad_utf8) / sizeof(bad_utf8[0]); ++i) {
        cr_assert_eq(parse(bad_utf8[i], &obj, &errs), 400);
        cr_assert_str_eq(errs.detail, "the body is not valid UTF-8");
    }
    cr_assert_eq(parse("{\"name\":\"a\\u0000b\"}", &obj, &errs), 400);
    cr_assert_not_null(strstr(errs.detail, "u0000"));
    cr_assert_eq(parse("{\"amount\":\"1\",\"amount\":\"2\"}", &obj, &errs), 400);
    cr_assert_not_null(strstr(errs.detail, "repeats a key"), "%s", errs.detail);
    /* escaped non-ASCII is fine */
    cr_assert_eq(parse("{\"name\":\"\\u00e9\xc3\xa9\"}", &obj, &errs), 0);
    json_decref(obj);
}

Test(net_json, integers_beyond_int64_are_named)
{
    net_json_errors_t errs;
    json_t *obj;
    cr_assert_eq(parse("{\"name\":\"a\",\"maxExecutions\":9223372036854775808}", &obj, &errs), 400);
    cr_assert_eq(errs.count, 1, "%s", errs.detail);
    cr_assert_str_eq(errs.items[0].field, "maxExecutions");
    cr_assert_not_null(strstr(errs.items[0].message, "out of range"));
    cr_assert_eq(parse("{\"a\":1,\"b\":-9223372036854775809}", &obj, &errs), 400);
    cr_assert_str_eq(errs.items[0].field, "b");
    cr_assert_eq(parse("{\"constraints\":{\"x\":[1,99999999999999999999999]}}", &obj, &errs), 400);
    cr_assert_str_eq(errs.items[0].field, "constraints.x[1]");
    /* a real too large for a double, too */
    cr_assert_eq(parse("{\"a\":1,\"b\":1e400}", &obj, &errs), 400);
    cr_assert_str_eq(errs.items[0].field, "b");
    /* next to values that round to the same double, and after strings that look like JSON */
    cr_assert_eq(parse("{\"ok\":9223372036854775807,\"s\":\"}]\\\"1,{\",\"arr\":[{\"c\":-1},"
                       "[9223372036854775808]]}",
                       &obj, &errs),
                 400);
    cr_assert_eq(errs.count, 1, "%s", errs.detail);
    cr_assert_str_eq(errs.items[0].field, "arr[1][0]");
    /* the int64 bounds themselves are fine */
    cr_assert_eq(parse("{\"a\":9223372036854775807,\"b\":-9223372036854775808}", &obj, &errs), 0);
    cr_assert_eq(json_integer_value(json_object_get(obj, "a")), INT64_MAX);
    cr_assert_eq(json_integer_value(json_object_get(obj, "b")), INT64_MIN);
    json_decref(obj);
}

Test(net_json, a_valid_object_passes)
{
    net_json_errors_t errs;
    cr_assert(
        validate("{\"name\":\"r\xc3\xa9nt\xc3\xa9\",\"amount\":\"100.5\",\"intervalSeconds\":60,"
                 "\"maxExecutions\":null,\"paused\":false,\"constraints\":{},\"days\":[]}",
                 &errs),
        "%zu errors, first %s %s", errs.count, errs.items[0].field, errs.items[0].message);
    cr_assert_not(net_json_errors_any(&errs));
    cr_assert(validate("{\"name\":\"a\",\"amount\":\"0\"}", &errs), "optional fields are optional");
}

Test(net_json, unknown_missing_and_wrong_types_are_all_named)
{
    net_json_errors_t errs;
    cr_assert_not(validate("{\"amount\":100.5,\"nmae\":\"x\",\"paused\":\"yes\","
                           "\"constraints\":[],\"days\":{},\"maxExecutions\":\"3\",\"extra\":1}",
                           &errs));
    cr_assert_eq(errs.count, 8);
    cr_assert_str_eq(errs.items[0].field, "nmae", "unknown fields come first, in body order");
    cr_assert_str_eq(errs.items[0].message, "is not a known field");
    cr_assert_str_eq(errs.items[1].field, "extra");
    cr_assert_str_eq(error_for(&errs, "name"), "is required");
    cr_assert_str_eq(error_for(&errs, "amount"), "must be a decimal string such as \"100.5\"");
    cr_assert_str_eq(error_for(&errs, "paused"), "must be true or false");
    cr_assert_str_eq(error_for(&errs, "constraints"), "must be an object");
    cr_assert_str_eq(error_for(&errs, "days"), "must be an array");
    cr_assert_str_eq(error_for(&errs, "maxExecutions"), "must be an integer");
    cr_assert_not(validate("{\"name\":null,\"amount\":\"1\"}", &errs));
    cr_assert_str_eq(error_for(&errs, "name"), "must be a string, not null");
}

Test(net_json, floats_are_not_integers)
{
    net_json_errors_t errs;
    static const char *const floats[] = {"60.0", "6e1", "60E0", "6.5e1", "-0.0"};
    char body[128];
    for (size_t i = 0; i != sizeof(floats) / sizeof(floats[0]); ++i) {
        snprintf(body, sizeof(body), "{\"name\":\"a\",\"amount\":\"1\",\"maxExecutions\":%s}",
                 floats[i]);
        cr_assert_not(validate(body, &errs), "%s accepted as an integer", floats[i]);
        cr_assert_str_eq(error_for(&errs, "maxExecutions"),
                         "must be an integer (no fraction or exponent)");
    }
    cr_assert(validate("{\"name\":\"a\",\"amount\":\"1\",\"maxExecutions\":-0}", &errs));
}

Test(net_json, integer_ranges_string_and_array_limits)
{
    net_json_errors_t errs;
    cr_assert_not(validate("{\"name\":\"a\",\"amount\":\"1\",\"intervalSeconds\":59}", &errs));
    cr_assert_str_eq(error_for(&errs, "intervalSeconds"), "must be between 60 and 31536000");
    cr_assert(validate("{\"name\":\"a\",\"amount\":\"1\",\"intervalSeconds\":31536000}", &errs));
    /* max_len counts characters, not bytes: five e-acute are 10 bytes */
    cr_assert(validate("{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\",\"amount\":\"1\"}",
                       &errs));
    cr_assert_not(validate("{\"name\":\"abcdef\",\"amount\":\"1\"}", &errs));
    cr_assert_str_eq(error_for(&errs, "name"), "must be at most 5 characters");
    cr_assert_not(validate("{\"name\":\"a\",\"amount\":\"1\",\"days\":[1,2,3,4,5,6,7,8]}", &errs));
    cr_assert_str_eq(error_for(&errs, "days"), "must have at most 7 elements");
}

Test(net_json, decimal_strings)
{
    static const char *const ok[] = {
        "0",        "1",     "100.5",
        "0.000001", "10.10", "115792089237316195423570985008687907853269984665640564039457"};
    static const char *const bad[] = {
        "",    "-1", "+1", "01",   "00.5",  ".5",  "5.",      "1e18",
        "1,5", " 1", "1 ", "0x10", "1.2.3", "NaN", "\xd9\xa1" /* Arabic-Indic one */};
    for (size_t i = 0; i != sizeof(ok) / sizeof(ok[0]); ++i)
        cr_assert(net_json_is_decimal(ok[i], strlen(ok[i])), "'%s' refused", ok[i]);
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        cr_assert_not(net_json_is_decimal(bad[i], strlen(bad[i])), "'%s' accepted", bad[i]);
    char longest[NET_JSON_DECIMAL_MAX_LEN + 2];
    memset(longest, '1', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    cr_assert(net_json_is_decimal(longest, NET_JSON_DECIMAL_MAX_LEN));
    cr_assert_not(net_json_is_decimal(longest, NET_JSON_DECIMAL_MAX_LEN + 1));
}

Test(net_json, nested_objects_use_a_prefix)
{
    static const net_json_field_t window[] = {
        {.name = "start", .kind = NET_JSON_STRING, .flags = NET_JSON_REQUIRED},
        {.name = "end", .kind = NET_JSON_STRING, .flags = NET_JSON_REQUIRED},
    };
    net_json_errors_t errs;
    net_json_errors_init(&errs);
    json_t *obj = json_loads("{\"start\":900,\"stop\":\"10:00\"}", 0, NULL);
    cr_assert_not(net_json_validate(obj, window, 2, "constraints.timeWindow", &errs));
    cr_assert_str_eq(error_for(&errs, "constraints.timeWindow.stop"), "is not a known field");
    cr_assert_str_eq(error_for(&errs, "constraints.timeWindow.start"), "must be a string");
    cr_assert_str_eq(error_for(&errs, "constraints.timeWindow.end"), "is required");
    json_decref(obj);
}

Test(net_json, errors_are_capped_and_names_cut_on_utf8_boundaries)
{
    char body[8192] = "{";
    size_t len = 1;
    for (int i = 0; i != 40; ++i)
        len +=
            (size_t)snprintf(body + len, sizeof(body) - len, "%s\"unknown%d\":1", i ? "," : "", i);
    /* a long key made of two-byte characters, so a byte cut could land mid-character */
    len += (size_t)snprintf(body + len, sizeof(body) - len, ",\"");
    for (int i = 0; i != 100; ++i)
        len += (size_t)snprintf(body + len, sizeof(body) - len, "\xc3\xa9");
    snprintf(body + len, sizeof(body) - len, "\":1}");
    net_json_errors_t errs;
    json_t *obj;
    cr_assert_eq(parse(body, &obj, &errs), 0);
    cr_assert_not(net_json_validate(obj, intent_fields, N_INTENT, NULL, &errs));
    cr_assert_eq(errs.count, NET_JSON_MAX_ERRORS);
    cr_assert(errs.truncated);
    json_decref(obj);
    /* the long name alone */
    char name[256] = "";
    for (int i = 0; i != 100; ++i)
        strcat(name, "\xc3\xa9");
    net_json_errors_init(&errs);
    net_json_errors_add(&errs, name, "is %s", "odd");
    cr_assert_lt(strlen(errs.items[0].field), sizeof(errs.items[0].field));
    cr_assert(net_http_utf8_valid(errs.items[0].field, strlen(errs.items[0].field)));
    cr_assert_not_null(strstr(errs.items[0].field, "..."));
    cr_assert_str_eq(errs.items[0].message, "is odd");
}

Test(net_json, get_string)
{
    json_t *obj = json_loads("{\"a\":\"x\",\"b\":1,\"c\":null}", 0, NULL);
    cr_assert_str_eq(net_json_get_string(obj, "a"), "x");
    cr_assert_null(net_json_get_string(obj, "b"));
    cr_assert_null(net_json_get_string(obj, "c"));
    cr_assert_null(net_json_get_string(obj, "d"));
    json_decref(obj);
}
