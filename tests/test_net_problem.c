/* RFC 9457 problem details: the exact shape, stable type URIs per status, field errors, and 5xx
 * answers that never carry the caller's text. */
#include <criterion/criterion.h>
#include <string.h>
#include "net/problem.h"

/* The object's keys, in order, joined with ','. */
static void keys_of(const json_t *obj, char *out, size_t cap)
{
    const char *key;
    json_t *v;
    out[0] = '\0';
    json_object_foreach((json_t *)obj, key, v)
    {
        if (out[0] != '\0')
            strncat(out, ",", cap - strlen(out) - 1);
        strncat(out, key, cap - strlen(out) - 1);
    }
}

Test(net_problem, shape_with_field_errors)
{
    net_json_errors_t errs;
    net_json_errors_init(&errs);
    net_json_errors_add(&errs, "amount", "must be a decimal string such as \"100.5\"");
    net_json_errors_add(&errs, "nmae", "is not a known field");
    json_t *p = net_problem_json(&(net_problem_t){.status = 400,
                                                  .detail = "the body has invalid fields",
                                                  .errors = &errs,
                                                  .request_id = "0123456789abcdef00000001"});
    cr_assert_not_null(p);
    char keys[128];
    keys_of(p, keys, sizeof(keys));
    cr_assert_str_eq(keys, "type,title,status,detail,errors,requestId");
    cr_assert_str_eq(json_string_value(json_object_get(p, "type")),
                     "https://flowpay.dev/problems/invalid-request");
    cr_assert_str_eq(json_string_value(json_object_get(p, "title")), "Invalid request");
    cr_assert(json_is_integer(json_object_get(p, "status")));
    cr_assert_eq(json_integer_value(json_object_get(p, "status")), 400);
    cr_assert_str_eq(json_string_value(json_object_get(p, "detail")),
                     "the body has invalid fields");
    json_t *list = json_object_get(p, "errors");
    cr_assert_eq(json_array_size(list), 2);
    json_t *first = json_array_get(list, 0);
    keys_of(first, keys, sizeof(keys));
    cr_assert_str_eq(keys, "field,message");
    cr_assert_str_eq(json_string_value(json_object_get(first, "field")), "amount");
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 1), "message")),
                     "is not a known field");
    cr_assert_str_eq(json_string_value(json_object_get(p, "requestId")),
                     "0123456789abcdef00000001");
    /* it serialises to what a client parses back */
    char *text = json_dumps(p, JSON_COMPACT);
    cr_assert_not_null(strstr(text, "\"errors\":[{\"field\":\"amount\",\"message\":"));
    free(text);
    json_decref(p);
}

Test(net_problem, defaults_errors_always_present)
{
    json_t *p = net_problem_json(&(net_problem_t){.status = 404});
    char keys[128];
    keys_of(p, keys, sizeof(keys));
    cr_assert_str_eq(keys, "type,title,status,detail,errors", "no requestId when none is given");
    cr_assert_str_eq(json_string_value(json_object_get(p, "detail")), "Not found");
    cr_assert(json_is_array(json_object_get(p, "errors")));
    cr_assert_eq(json_array_size(json_object_get(p, "errors")), 0);
    json_decref(p);
    /* a body-level detail from net/json is used when the caller gives none */
    net_json_errors_t errs;
    net_json_errors_init(&errs);
    snprintf(errs.detail, sizeof(errs.detail), "the body is not valid UTF-8");
    p = net_problem_json(&(net_problem_t){.status = 400, .errors = &errs});
    cr_assert_str_eq(json_string_value(json_object_get(p, "detail")),
                     "the body is not valid UTF-8");
    json_decref(p);
    /* the domain may name a type of its own */
    p = net_problem_json(&(net_problem_t){.status = 422,
                                          .type = NET_PROBLEM_TYPE_BASE "idempotency-key-reused",
                                          .title = "Idempotency key reused"});
    cr_assert_str_eq(json_string_value(json_object_get(p, "type")),
                     "https://flowpay.dev/problems/idempotency-key-reused");
    cr_assert_str_eq(json_string_value(json_object_get(p, "title")), "Idempotency key reused");
    json_decref(p);
}

Test(net_problem, stable_types_per_status)
{
    static const struct {
        int status;
        const char *type;
    } expected[] = {
        {400, "https://flowpay.dev/problems/invalid-request"},
        {401, "https://flowpay.dev/problems/unauthorized"},
        {403, "https://flowpay.dev/problems/forbidden"},
        {404, "https://flowpay.dev/problems/not-found"},
        {405, "https://flowpay.dev/problems/method-not-allowed"},
        {409, "https://flowpay.dev/problems/conflict"},
        {413, "https://flowpay.dev/problems/body-too-large"},
        {415, "https://flowpay.dev/problems/unsupported-media-type"},
        {422, "https://flowpay.dev/problems/rule-violation"},
        {429, "https://flowpay.dev/problems/rate-limited"},
        {500, "https://flowpay.dev/problems/internal-error"},
        {503, "https://flowpay.dev/problems/unavailable"},
    };
    for (size_t i = 0; i != sizeof(expected) / sizeof(expected[0]); ++i) {
        cr_assert_str_eq(net_problem_type(expected[i].status), expected[i].type);
        cr_assert_neq(net_problem_title(expected[i].status)[0], '\0');
    }
    /* RFC 9457 4.2.1: about:blank takes the reason phrase as its title */
    cr_assert_str_eq(net_problem_type(418), "about:blank");
    cr_assert_str_eq(net_problem_type(502), "about:blank");
    json_t *p = net_problem_json(&(net_problem_t){.status = 502});
    cr_assert_str_eq(json_string_value(json_object_get(p, "type")), "about:blank");
    cr_assert_str_eq(json_string_value(json_object_get(p, "title")), "Unknown");
    json_decref(p);
}

Test(net_problem, server_errors_never_carry_the_callers_text)
{
    net_json_errors_t errs;
    net_json_errors_init(&errs);
    net_json_errors_add(&errs, "db", "password authentication failed for user intentd");
    static const int statuses[] = {500, 503, 502};
    for (size_t i = 0; i != 3; ++i) {
        json_t *p = net_problem_json(&(net_problem_t){
            .status = statuses[i],
            .type = "https://flowpay.dev/problems/pg-password-hunter2",
            .title = "PQexec failed: password hunter2",
            .detail = "PQexec: FATAL: password authentication failed; secret=hunter2",
            .errors = &errs,
            .request_id = "abcdef0123456789000000ff"});
        char *text = json_dumps(p, JSON_COMPACT);
        cr_assert_null(strstr(text, "hunter2"), "%s", text);
        cr_assert_null(strstr(text, "password"), "%s", text);
        cr_assert_null(strstr(text, "PQexec"), "%s", text);
        cr_assert_not_null(
            strstr(json_string_value(json_object_get(p, "detail")), "abcdef0123456789000000ff"),
            "the detail names the request id");
        cr_assert_eq(json_array_size(json_object_get(p, "errors")), 0);
        free(text);
        json_decref(p);
    }
    json_t *p = net_problem_json(&(net_problem_t){.status = 503});
    cr_assert_not_null(strstr(json_string_value(json_object_get(p, "detail")), "try again"));
    json_decref(p);
}
