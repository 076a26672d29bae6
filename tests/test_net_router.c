/* The router and the HTTP helpers: matching (parameters, literal over parameter, 404, 405 with
 * Allow, HEAD, strict percent-decoding), pattern registration, query strings, bearer tokens,
 * CORS origins; then, through a real h2o server on 127.0.0.1 in this process, what clients see:
 * problem+json answers, Allow, security headers, request ids, CORS and preflight, JSON bodies
 * (415, 413, 400 naming fields), 401, 409, 429, 500 and 204. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include "net/http_util.h"
#include "net/json.h"
#include "net/problem.h"
#include "net/router.h"

/* Handlers are told apart by their address; the pure tests never call them. */
static int h_list(h2o_req_t *req, const net_router_match_t *m, void *data)
{
    return 0;
}
static int h_get(h2o_req_t *req, const net_router_match_t *m, void *data)
{
    return 0;
}
static int h_upcoming(h2o_req_t *req, const net_router_match_t *m, void *data)
{
    return 0;
}
static int h_pause(h2o_req_t *req, const net_router_match_t *m, void *data)
{
    return 0;
}

static net_router_t *pure_router(void)
{
    net_router_t *r = net_router_create();
    cr_assert_null(net_router_add(r, "GET", "/api/intents", h_list, NULL));
    cr_assert_null(net_router_add(r, "POST", "/api/intents", h_list, NULL));
    cr_assert_null(net_router_add(r, "GET", "/api/intents/:id", h_get, NULL));
    cr_assert_null(net_router_add(r, "PATCH", "/api/intents/:id", h_get, NULL));
    cr_assert_null(net_router_add(r, "DELETE", "/api/intents/:id", h_get, NULL));
    cr_assert_null(net_router_add(r, "GET", "/api/intents/upcoming", h_upcoming, NULL));
    cr_assert_null(net_router_add(r, "POST", "/api/intents/:id/pause", h_pause, NULL));
    cr_assert_null(net_router_add(r, "GET", "/api/users/:user/intents/:id", h_get, NULL));
    cr_assert_null(net_router_add(r, "GET", "/", h_list, NULL));
    return r;
}

static char scratch[4096];

static net_router_result_t match(const net_router_t *r, const char *method, const char *path,
                                 net_router_match_t *m)
{
    cr_assert_lt(strlen(path) + NET_ROUTER_MAX_SEGMENTS + 1, sizeof(scratch));
    return net_router_match(r, method, strlen(method), path, strlen(path), scratch, m);
}

static void assert_param(const net_router_match_t *m, const char *name, const char *value)
{
    h2o_iovec_t v = net_router_param(m, name);
    cr_assert_not_null(v.base, "no parameter %s", name);
    cr_assert_eq(v.len, strlen(value), "%s: length %zu, not %zu", name, v.len, strlen(value));
    cr_assert_eq(memcmp(v.base, value, v.len), 0);
    cr_assert_eq(v.base[v.len], '\0', "not NUL-terminated");
}

Test(net_router, parameters)
{
    net_router_t *r = pure_router();
    net_router_match_t m;
    cr_assert_eq(match(r, "GET", "/api/intents/3f1c9a", &m), NET_ROUTER_FOUND);
    cr_assert_eq(m.handler, h_get);
    cr_assert_str_eq(m.pattern, "/api/intents/:id");
    cr_assert_eq(m.param_count, 1);
    assert_param(&m, "id", "3f1c9a");
    cr_assert_null(net_router_param(&m, "user").base);
    cr_assert_eq(match(r, "POST", "/api/intents/abc/pause", &m), NET_ROUTER_FOUND);
    cr_assert_eq(m.handler, h_pause);
    assert_param(&m, "id", "abc");
    cr_assert_eq(match(r, "GET", "/api/users/u1/intents/i2", &m), NET_ROUTER_FOUND);
    assert_param(&m, "user", "u1");
    assert_param(&m, "id", "i2");
    cr_assert_eq(match(r, "GET", "/", &m), NET_ROUTER_FOUND);
    cr_assert_eq(m.param_count, 0);
    net_router_free(r);
}

Test(net_router, literal_wins_over_parameter)
{
    net_router_t *r = pure_router();
    net_router_match_t m;
    cr_assert_eq(match(r, "GET", "/api/intents/upcoming", &m), NET_ROUTER_FOUND);
    cr_assert_eq(m.handler, h_upcoming);
    cr_assert_eq(m.param_count, 0);
    /* a literal spelled with escapes is still that literal */
    cr_assert_eq(match(r, "GET", "/api/intents/%75pcoming", &m), NET_ROUTER_FOUND);
    cr_assert_eq(m.handler, h_upcoming);
    cr_assert_eq(match(r, "GET", "/api/intents/upcomingx", &m), NET_ROUTER_FOUND);
    cr_assert_eq(m.handler, h_get);
    /* the literal keeps its position: no backtracking into :id */
    cr_assert_eq(match(r, "POST", "/api/intents/upcoming/pause", &m), NET_ROUTER_NOT_FOUND);
    cr_assert_eq(m.param_count, 0);
    /* the registration order does not matter */
    net_router_t *r2 = net_router_create();
    cr_assert_null(net_router_add(r2, "GET", "/a/:id", h_get, NULL));
    cr_assert_null(net_router_add(r2, "GET", "/a/z", h_upcoming, NULL));
    cr_assert_null(net_router_add(r2, "GET", "/a/b", h_list, NULL));
    cr_assert_eq(match(r2, "GET", "/a/z", &m), NET_ROUTER_FOUND);
    cr_assert_eq(m.handler, h_upcoming);
    cr_assert_eq(match(r2, "GET", "/a/b", &m), NET_ROUTER_FOUND);
    cr_assert_eq(m.handler, h_list);
    cr_assert_eq(match(r2, "GET", "/a/c", &m), NET_ROUTER_FOUND);
    cr_assert_eq(m.handler, h_get);
    net_router_free(r2);
    net_router_free(r);
}

Test(net_router, not_found_and_method_not_allowed)
{
    net_router_t *r = pure_router();
    net_router_match_t m;
    static const char *const missing[] = {
        "/api",  "/api/",        "/api/intents/",         "/api//intents", "/api/intents/a/b/c",
        "/nope", "/API/intents", "/api/intents/a/pause/",
    };
    for (size_t i = 0; i != sizeof(missing) / sizeof(missing[0]); ++i)
        cr_assert_eq(match(r, "GET", missing[i], &m), NET_ROUTER_NOT_FOUND, "%s", missing[i]);
    cr_assert_eq(match(r, "PUT", "/api/intents/abc", &m), NET_ROUTER_METHOD_NOT_ALLOWED);
    char allow[64];
    net_http_methods_format(m.allowed, allow, sizeof(allow));
    cr_assert_str_eq(allow, "GET, HEAD, PATCH, DELETE, OPTIONS");
    cr_assert_eq(match(r, "GET", "/api/intents/abc/pause", &m), NET_ROUTER_METHOD_NOT_ALLOWED);
    net_http_methods_format(m.allowed, allow, sizeof(allow));
    cr_assert_str_eq(allow, "POST, OPTIONS");
    cr_assert_eq(match(r, "OPTIONS", "/api/intents", &m), NET_ROUTER_METHOD_NOT_ALLOWED,
                 "OPTIONS goes to the options hook");
    cr_assert_eq(match(r, "BREW", "/api/intents", &m), NET_ROUTER_METHOD_NOT_ALLOWED);
    cr_assert_eq(match(r, "get", "/api/intents", &m), NET_ROUTER_METHOD_NOT_ALLOWED,
                 "methods are case-sensitive");
    cr_assert_eq(match(r, "HEAD", "/api/intents/abc", &m), NET_ROUTER_FOUND, "HEAD follows GET");
    cr_assert_eq(m.handler, h_get);
    cr_assert_eq(match(r, "HEAD", "/api/intents/abc/pause", &m), NET_ROUTER_METHOD_NOT_ALLOWED);
    /* deeper than any pattern can be */
    char deep[256] = "";
    for (int i = 0; i != NET_ROUTER_MAX_SEGMENTS + 1; ++i)
        strcat(deep, "/a");
    cr_assert_eq(match(r, "GET", deep, &m), NET_ROUTER_NOT_FOUND);
    net_router_free(r);
}

Test(net_router, percent_decoding_is_strict)
{
    net_router_t *r = pure_router();
    net_router_match_t m;
    cr_assert_eq(match(r, "GET", "/api/intents/a%20b", &m), NET_ROUTER_FOUND);
    assert_param(&m, "id", "a b");
    cr_assert_eq(match(r, "GET", "/api/intents/a%2Fb", &m), NET_ROUTER_FOUND,
                 "an encoded '/' stays inside its segment");
    assert_param(&m, "id", "a/b");
    cr_assert_eq(match(r, "GET", "/api/intents/caf%C3%A9", &m), NET_ROUTER_FOUND);
    assert_param(&m, "id", "caf\xc3\xa9");
    cr_assert_eq(match(r, "GET", "/api/intents/a+b", &m), NET_ROUTER_FOUND);
    assert_param(&m, "id", "a+b"); /* '+' is a space only in query strings */
    static const char *const bad[] = {
        "/api/intents/%zz",
        "/api/intents/%4",
        "/api/intents/%",
        "/api/intents/%00",
        "/api/intents/a%0Ab",
        "/api/intents/%7F",
        "/api/intents/%C3",
        "/api/intents/%C0%AF",
        "/api/intents/%ED%A0%80",
        "/api/intents/a b",
        "/api/intents/\xc3\xa9",
        "/api/intents/..",
        "/api/intents/%2e%2E",
        "/api/intents/.",
        "/api/%2E/x",
        "api/intents",
        "",
    };
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        cr_assert_eq(match(r, "GET", bad[i], &m), NET_ROUTER_BAD_PATH, "'%s' accepted", bad[i]);
        cr_assert_not_null(m.error);
        cr_assert_eq(m.param_count, 0);
    }
    net_router_free(r);
}

Test(net_router, registration_is_checked_and_atomic)
{
    net_router_t *r = net_router_create();
    cr_assert_null(net_router_add(r, "GET", "/a/:id", h_get, NULL));
    static const struct {
        const char *method, *pattern;
    } bad[] = {
        {"GET", "a/b"},
        {"GET", "/a/"},
        {"GET", "//a"},
        {"GET", "/a//b"},
        {"GET", "/a b"},
        {"GET", "/a/%20"},
        {"GET", "/:"},
        {"GET", "/:1x"},
        {"GET", "/:a-b"},
        {"GET", "/a/:other"},
        {"GET", "/a/:id"},
        {"GET", "/x/:p/:p"},
        {"FETCH", "/x"},
        {"get", "/x"},
        {"GET", "/x/.."},
        {"GET", "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17"},
        {"GET", "/:a/:b/:c/:d/:e/:f/:g/:h/:i"},
    };
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        cr_assert_not_null(net_router_add(r, bad[i].method, bad[i].pattern, h_get, NULL),
                           "%s %s accepted", bad[i].method, bad[i].pattern);
    /* "/x/:p/:p" was refused without leaving ":p" behind at /x */
    cr_assert_null(net_router_add(r, "GET", "/x/:other", h_get, NULL));
    cr_assert_null(net_router_add(r, "POST", "/a/:id", h_get, NULL), "another method is fine");
    cr_assert_null(net_router_add(r, "GET", "/a/:id/b/:id2", h_get, NULL));
    cr_assert_null(
        net_router_add(r, "GET", "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16", h_get, NULL));
    net_router_match_t m;
    cr_assert_eq(match(r, "GET", "/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16", &m), NET_ROUTER_FOUND);
    net_router_free(r);
}

Test(net_http_util, methods_and_reasons)
{
    cr_assert_eq(net_http_method_bit("PATCH", 5), NET_HTTP_PATCH);
    cr_assert_eq(net_http_method_bit("PATC", 4), 0);
    char buf[64];
    cr_assert_eq(net_http_methods_format(0x7f, buf, sizeof(buf)), strlen(buf));
    cr_assert_str_eq(buf, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS");
    net_http_methods_format(0, buf, sizeof(buf));
    cr_assert_str_eq(buf, "");
    cr_assert_str_eq(net_http_reason(422), "Unprocessable Content");
    cr_assert_str_eq(net_http_reason(299), "Unknown");
}

Test(net_http_util, utf8)
{
    static const char *const ok[] = {"",
                                     "abc",
                                     "\xc3\xa9",
                                     "\xe2\x82\xac",
                                     "\xf0\x9f\x98\x80",
                                     "\xf4\x8f\xbf\xbf",
                                     "\xef\xbf\xbf"};
    static const char *const bad[] = {
        "\x80",         "\xc3",         "\xc0\xaf",         "\xc1\xbf",
        "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
        "\xff",         "\xe2\x82",     "a\xc3(b"};
    for (size_t i = 0; i != sizeof(ok) / sizeof(ok[0]); ++i)
        cr_assert(net_http_utf8_valid(ok[i], strlen(ok[i])), "#%zu refused", i);
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        cr_assert_not(net_http_utf8_valid(bad[i], strlen(bad[i])), "#%zu accepted", i);
}

static net_http_query_result_t query(const char *q, const char *name, char *buf, size_t cap,
                                     h2o_iovec_t *v)
{
    return net_http_query_get(q, strlen(q), name, buf, cap, v);
}

Test(net_http_util, query_strings)
{
    char buf[32];
    h2o_iovec_t v;
    const char *q = "limit=50&cursor=ab%2Fc%3D&status=active&empty=&flag&name=a+b%20c";
    cr_assert_eq(query(q, "limit", buf, sizeof(buf), &v), NET_HTTP_QUERY_FOUND);
    cr_assert(h2o_memis(v.base, v.len, H2O_STRLIT("50")));
    cr_assert_eq(query(q, "cursor", buf, sizeof(buf), &v), NET_HTTP_QUERY_FOUND);
    cr_assert(h2o_memis(v.base, v.len, H2O_STRLIT("ab/c=")));
    cr_assert_eq(query(q, "name", buf, sizeof(buf), &v), NET_HTTP_QUERY_FOUND);
    cr_assert(h2o_memis(v.base, v.len, H2O_STRLIT("a b c")));
    cr_assert_eq(query(q, "empty", buf, sizeof(buf), &v), NET_HTTP_QUERY_FOUND);
    cr_assert_eq(v.len, 0);
    cr_assert_eq(query(q, "flag", buf, sizeof(buf), &v), NET_HTTP_QUERY_FOUND);
    cr_assert_eq(v.len, 0);
    cr_assert_eq(query(q, "stat", buf, sizeof(buf), &v), NET_HTTP_QUERY_ABSENT);
    cr_assert_eq(query("", "limit", buf, sizeof(buf), &v), NET_HTTP_QUERY_ABSENT);
    cr_assert_eq(query("limit=1&limit=2", "limit", buf, sizeof(buf), &v), NET_HTTP_QUERY_INVALID,
                 "a repeated name is ambiguous");
    cr_assert_eq(query("limit=%zz", "limit", buf, sizeof(buf), &v), NET_HTTP_QUERY_INVALID);
    cr_assert_eq(query("limit=%00", "limit", buf, sizeof(buf), &v), NET_HTTP_QUERY_INVALID);
    cr_assert_eq(query("x=%zz&limit=1", "limit", buf, sizeof(buf), &v), NET_HTTP_QUERY_FOUND,
                 "other parameters are not this one's business");
    cr_assert_eq(query("limit=0123456789", "limit", buf, 10, &v), NET_HTTP_QUERY_INVALID,
                 "longer than the buffer");
}

Test(net_http_util, bearer_tokens)
{
    h2o_iovec_t t;
    cr_assert(net_http_parse_bearer(H2O_STRLIT("Bearer abc.DEF-_~+/123=="), &t));
    cr_assert(h2o_memis(t.base, t.len, H2O_STRLIT("abc.DEF-_~+/123==")));
    cr_assert(net_http_parse_bearer(H2O_STRLIT("bearer   tok  "), &t));
    cr_assert(h2o_memis(t.base, t.len, H2O_STRLIT("tok")));
    static const char *const bad[] = {
        "",           "Bearer",   "Bearer ",    "Basic dXNlcg==", "Bearertok",       "Bearer a b",
        "Bearer a=b", "Bearer =", "Bearer a,b", "Bearer\ttok",    "Bearer t\xc3\xa9"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        cr_assert_not(net_http_parse_bearer(bad[i], strlen(bad[i]), &t), "'%s' accepted", bad[i]);
}

/* Every byte inside a token: accepted exactly when it is one of RFC 6750's b64token characters
 * (the parser reads them from a table; this spells them out again). */
Test(net_http_util, bearer_token_characters)
{
    for (int c = 0; c != 256; ++c) {
        char header[16] = "Bearer a?b";
        header[8] = (char)c;
        bool expected = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
                        (c >= 'a' && c <= 'z') || (c != 0 && strchr("-._~+/", c) != NULL);
        h2o_iovec_t t;
        cr_assert_eq(net_http_parse_bearer(header, 10, &t), expected, "byte 0x%02x", c);
        if (expected)
            cr_assert(t.base == header + 7 && t.len == 3, "byte 0x%02x", c);
    }
    /* a long token (read eight bytes a time): one bad byte anywhere refuses it */
    char header[64] = "Bearer ";
    for (int i = 0; i != 41; ++i)
        header[7 + i] = "abcdefghijklmnopqrstuvwxyz0123456789-._~+"[i];
    h2o_iovec_t t;
    cr_assert(net_http_parse_bearer(header, 48, &t) && t.len == 41);
    for (int at = 0; at != 41; ++at) {
        char bad[64];
        memcpy(bad, header, sizeof(bad));
        bad[7 + at] = at % 2 == 0 ? ',' : '\x80';
        cr_assert_not(net_http_parse_bearer(bad, 48, &t), "bad byte at %d accepted", at);
        bad[7 + at] = '=';
        cr_assert_eq(net_http_parse_bearer(bad, 48, &t), at == 40, "'=' at %d", at);
    }
}

/* Accept-Encoding as RFC 9110 12.5.3 reads it: weights, "*", a listed "gzip;q=0" refusing,
 * several field lines as one list, and malformed elements skipped rather than trusted. */
Test(net_http_util, gzip_acceptable)
{
    static const struct {
        const char *value;
        bool gzip;
    } cases[] = {
        {"gzip", true},
        {"gzip, deflate, br, zstd", true}, /* what browsers send */
        {"GZIP", true},
        {"x-gzip", true},
        {" deflate ,\tgzip ", true},
        {"gzip;q=0.5", true},
        {"gzip ; Q=1.000", true},
        {"gzip;q=0.001", true},
        {"gzip;q=0", false},
        {"gzip;q=0.000", false},
        {"gzip;q=0, *", false}, /* listed: "*" does not overrule it */
        {"*", true},
        {"*;q=0.1", true},
        {"*;q=0", false},
        {"br, *;q=0", false},
        {"", false},
        {"identity", false},
        {"deflate, br", false},
        {"gzipx", false},
        {"gzip;q=1.5", false}, /* out of range: skipped, so nothing is listed */
        {"gzip;q=.5", false},  /* malformed */
        {"gzip;q=0.0001", false},
        {"gzip;level=1", false}, /* not a weight */
        {"gzip;q=0.5;x=1", false},
        {",,gzip,,", true},
        {"gzip;q=0, gzip;q=0.3", true}, /* listed twice: the larger */
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i) {
        h2o_iovec_t v = h2o_iovec_init(cases[i].value, strlen(cases[i].value));
        cr_assert_eq(net_http_gzip_acceptable(&v, 1), cases[i].gzip, "'%s'", cases[i].value);
    }
    cr_assert_not(net_http_gzip_acceptable(NULL, 0), "no field: no coding");
    h2o_iovec_t two[] = {{H2O_STRLIT("br")}, {H2O_STRLIT("gzip")}};
    cr_assert(net_http_gzip_acceptable(two, 2), "two field lines are one list");
    h2o_iovec_t refused[] = {{H2O_STRLIT("*")}, {H2O_STRLIT("gzip;q=0")}};
    cr_assert_not(net_http_gzip_acceptable(refused, 2));
}

Test(net_http_util, cors_origins)
{
    net_http_cors_t cors;
    char err[256];
    cr_assert(net_http_cors_init(&cors,
                                 " https://app.flowpay.dev ,http://localhost:5173,,"
                                 "http://127.0.0.1:8080",
                                 err, sizeof(err)),
              "%s", err);
    cr_assert_eq(cors.count, 3);
    cr_assert(net_http_cors_allows(&cors, H2O_STRLIT("https://app.flowpay.dev")));
    cr_assert(net_http_cors_allows(&cors, H2O_STRLIT("HTTPS://APP.flowpay.dev")));
    cr_assert(net_http_cors_allows(&cors, H2O_STRLIT("http://localhost:5173")));
    static const char *const refused[] = {"https://app.flowpay.dev.evil.com",
                                          "https://evil.com/https://app.flowpay.dev",
                                          "http://app.flowpay.dev",
                                          "https://app.flowpay.de",
                                          "http://localhost:5174",
                                          "null",
                                          ""};
    for (size_t i = 0; i != sizeof(refused) / sizeof(refused[0]); ++i)
        cr_assert_not(net_http_cors_allows(&cors, refused[i], strlen(refused[i])), "%s",
                      refused[i]);
    static const char *const bad[] = {"*",
                                      "null",
                                      "https://app.flowpay.dev/",
                                      "ftp://a.com",
                                      "https://",
                                      "app.flowpay.dev",
                                      "https://a.com/path",
                                      "https://user@a.com",
                                      "https://a.com:",
                                      "https://a.com?x"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        cr_assert_not(net_http_cors_init(&cors, bad[i], err, sizeof(err)), "'%s' accepted", bad[i]);
    cr_assert(net_http_cors_init(&cors, "https://[::1]:8443, http://10.0.0.1", err, sizeof(err)),
              "%s", err);
    cr_assert_eq(cors.count, 2);
    cr_assert(net_http_cors_init(&cors, NULL, err, sizeof(err)));
    cr_assert_eq(cors.count, 0);
    cr_assert_not(net_http_cors_allows(&cors, H2O_STRLIT("https://app.flowpay.dev")));
    char many[2048] = "";
    for (int i = 0; i != NET_HTTP_CORS_MAX_ORIGINS + 1; ++i)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "https://a%d.com,", i);
    cr_assert_not(net_http_cors_init(&cors, many, err, sizeof(err)));
}

/* ---- through a real h2o server ---------------------------------------------------------- */

static net_router_t *router;
static net_http_cors_t cors;
static h2o_globalconf_t config;
static h2o_context_t ctx;
static h2o_accept_ctx_t accept_ctx;
static h2o_evloop_t *loop;
static pthread_t server_thread;
static atomic_bool stopping;
static int port;

static const net_json_field_t create_fields[] = {
    {.name = "name", .kind = NET_JSON_STRING, .flags = NET_JSON_REQUIRED, .max_len = 100},
    {.name = "amount", .kind = NET_JSON_DECIMAL, .flags = NET_JSON_REQUIRED},
    {.name = "maxExecutions", .kind = NET_JSON_INTEGER, .flags = NET_JSON_NULLABLE},
};

static int on_get(h2o_req_t *req, const net_router_match_t *m, void *data)
{
    h2o_iovec_t id = net_router_param(m, "id");
    return net_json_send(req, 200, json_pack("{s:s%}", "id", id.base, id.len));
}

static int on_create(h2o_req_t *req, const net_router_match_t *m, void *data)
{
    json_t *body = net_json_read(req, create_fields, 3);
    if (body == NULL)
        return 0; /* answered */
    json_t *answer = json_pack("{s:O}", "amount", json_object_get(body, "amount"));
    json_decref(body);
    return net_json_send(req, 201, answer);
}

static int on_pause(h2o_req_t *req, const net_router_match_t *m, void *data)
{
    if (strcmp(net_router_param(m, "id").base, "missing") == 0)
        return -1; /* the router answers 404 */
    return net_problem_conflict(req, "only an active intent can be paused");
}

static int on_delete(h2o_req_t *req, const net_router_match_t *m, void *data)
{
    net_http_send(req, 204, NULL, NULL, 0);
    return 0;
}

static int on_boom(h2o_req_t *req, const net_router_match_t *m, void *data)
{
    return net_problem_internal(req);
}

static int on_limited(h2o_req_t *req, const net_router_match_t *m, void *data)
{
    return net_problem_rate_limited(req, 30);
}

static int on_private(h2o_req_t *req, const net_router_match_t *m, void *data)
{
    h2o_iovec_t token;
    if (!net_http_bearer_token(req, &token))
        return net_problem_unauthorized(req, "a bearer token is required");
    return net_json_send(req, 200, json_pack("{s:s%}", "token", token.base, token.len));
}

static int on_query(h2o_req_t *req, const net_router_match_t *m, void *data)
{
    h2o_iovec_t q = net_http_query_of(req), v;
    char buf[64];
    if (net_http_query_get(q.base, q.len, "limit", buf, sizeof(buf), &v) != NET_HTTP_QUERY_FOUND)
        return net_problem_bad_request(req, "limit is needed", NULL);
    return net_json_send(req, 200, json_pack("{s:s%}", "limit", v.base, v.len));
}

typedef struct st_mount_t {
    h2o_handler_t super;
} mount_t;

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    return net_router_handle(req, router);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    h2o_socket_t *sock;
    if (err == NULL && (sock = h2o_evloop_socket_accept(listener)) != NULL)
        h2o_accept(&accept_ctx, sock);
}

static void *serve(void *unused)
{
    while (!atomic_load(&stopping))
        h2o_evloop_run(loop, 10);
    return NULL;
}

static void add_routes(void)
{
    router = net_router_create();
    cr_assert_null(net_router_add(router, "GET", "/api/intents/:id", on_get, NULL));
    cr_assert_null(net_router_add(router, "DELETE", "/api/intents/:id", on_delete, NULL));
    cr_assert_null(net_router_add(router, "POST", "/api/intents", on_create, NULL));
    cr_assert_null(net_router_add(router, "POST", "/api/intents/:id/pause", on_pause, NULL));
    cr_assert_null(net_router_add(router, "GET", "/boom", on_boom, NULL));
    cr_assert_null(net_router_add(router, "GET", "/limited", on_limited, NULL));
    cr_assert_null(net_router_add(router, "GET", "/private", on_private, NULL));
    cr_assert_null(net_router_add(router, "GET", "/query", on_query, NULL));
    char err[256];
    cr_assert(net_http_cors_init(&cors, "https://app.flowpay.dev,http://localhost:5173", err,
                                 sizeof(err)));
    net_router_set_cors(router, &cors);
}

static void server_start(void)
{
    add_routes();
    h2o_config_init(&config);
    h2o_hostconf_t *host =
        h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_create_handler(path, sizeof(mount_t))->on_req = on_req;
    loop = h2o_evloop_create();
    h2o_context_init(&ctx, loop, &config);
    accept_ctx.ctx = &ctx;
    accept_ctx.hosts = config.hosts;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    cr_assert_eq(listen(fd, 16), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
    port = ntohs(addr.sin_port);
    h2o_socket_read_start(h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ), on_accept);
    cr_assert_eq(pthread_create(&server_thread, NULL, serve, NULL), 0);
}

/* h2o 2.2.5 cannot dispose a loop that served connections (see tests/lsan.supp): the thread
 * stops and the loop is left to process exit, as intentd itself does. */
static void server_stop(void)
{
    atomic_store(&stopping, true);
    pthread_join(server_thread, NULL);
    net_router_free(router);
}

typedef struct st_response_t {
    int status;
    char raw[1 << 16];
    size_t len;
    const char *body;
    size_t body_len;
} response_t;

static response_t resp;

/* Sends `head` (request line and headers, without the blank line) and `body`; reads the whole
 * answer (Connection: close) into `resp`. */
static response_t *send_raw(const char *head, const char *body, size_t body_len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    char req[1024];
    int n = snprintf(req, sizeof(req), "%s\r\nHost: localhost\r\nConnection: close\r\n%s\r\n", head,
                     body != NULL ? "" : "");
    if (body != NULL)
        n += snprintf(req + n - 2, sizeof(req) - (size_t)n + 2, "Content-Length: %zu\r\n\r\n",
                      body_len) -
             2;
    cr_assert_eq(write(fd, req, (size_t)n), n);
    for (size_t off = 0; body != NULL && off < body_len;) {
        ssize_t w = write(fd, body + off, body_len - off);
        cr_assert_gt(w, 0);
        off += (size_t)w;
    }
    resp.len = 0;
    ssize_t r;
    while (resp.len + 1 < sizeof(resp.raw) &&
           (r = read(fd, resp.raw + resp.len, sizeof(resp.raw) - 1 - resp.len)) > 0)
        resp.len += (size_t)r;
    resp.raw[resp.len] = '\0';
    close(fd);
    cr_assert_eq(sscanf(resp.raw, "HTTP/1.1 %d", &resp.status), 1, "%s", resp.raw);
    char *end = strstr(resp.raw, "\r\n\r\n");
    cr_assert_not_null(end);
    resp.body = end + 4;
    resp.body_len = resp.len - (size_t)(resp.body - resp.raw);
    return &resp;
}

static response_t *get(const char *method, const char *path, const char *headers)
{
    char head[1024];
    snprintf(head, sizeof(head), "%s %s HTTP/1.1%s%s", method, path, headers[0] ? "\r\n" : "",
             headers);
    return send_raw(head, NULL, 0);
}

/* The value of header `name` (case-insensitive), copied; NULL when absent. */
static const char *header(const response_t *r, const char *name)
{
    static char value[512];
    size_t name_len = strlen(name);
    for (const char *line = strstr(r->raw, "\r\n") + 2; line < r->body - 2;
         line = strstr(line, "\r\n") + 2) {
        if (strncasecmp(line, name, name_len) == 0 && line[name_len] == ':') {
            const char *v = line + name_len + 1, *eol = strstr(v, "\r\n");
            while (*v == ' ')
                ++v;
            snprintf(value, sizeof(value), "%.*s", (int)(eol - v), v);
            return value;
        }
    }
    return NULL;
}

static void assert_header(const response_t *r, const char *name, const char *expected)
{
    const char *v = header(r, name);
    cr_assert_not_null(v, "no %s header in\n%s", name, r->raw);
    cr_assert_str_eq(v, expected, "%s: '%s' in\n%s", name, v, r->raw);
}

static json_t *body_json(const response_t *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body, r->body_len, 0, &e);
    cr_assert_not_null(j, "not JSON: %s\n%s", e.text, r->raw);
    return j;
}

/* Checks a problem+json answer and returns its parsed body. */
static json_t *assert_problem(const response_t *r, int status, const char *type_slug)
{
    cr_assert_eq(r->status, status, "%s", r->raw);
    assert_header(r, "content-type", "application/problem+json");
    json_t *p = body_json(r);
    char type[128];
    snprintf(type, sizeof(type), NET_PROBLEM_TYPE_BASE "%s", type_slug);
    cr_assert_str_eq(json_string_value(json_object_get(p, "type")), type);
    cr_assert_eq(json_integer_value(json_object_get(p, "status")), status);
    cr_assert(json_is_string(json_object_get(p, "title")));
    cr_assert(json_is_string(json_object_get(p, "detail")));
    cr_assert(json_is_array(json_object_get(p, "errors")));
    cr_assert_str_eq(json_string_value(json_object_get(p, "requestId")), header(r, "x-request-id"),
                     "the body and the header name one request id");
    return p;
}

TestSuite(net_router_http, .init = server_start, .fini = server_stop, .timeout = 30);

Test(net_router_http, found_with_parameter_and_security_headers)
{
    response_t *r = get("GET", "/api/intents/a%20b?x=1", "");
    cr_assert_eq(r->status, 200, "%s", r->raw);
    assert_header(r, "content-type", "application/json");
    cr_assert_eq(r->body_len, strlen("{\"id\":\"a b\"}"));
    cr_assert_eq(memcmp(r->body, "{\"id\":\"a b\"}", r->body_len), 0);
    assert_header(r, "x-content-type-options", "nosniff");
    assert_header(r, "referrer-policy", "no-referrer");
    assert_header(r, "x-frame-options", "DENY");
    assert_header(r, "cache-control", "no-store");
    assert_header(r, "content-security-policy", "default-src 'none'; frame-ancestors 'none'");
    assert_header(r, "vary", "Origin");
    cr_assert_null(header(r, "access-control-allow-origin"), "no Origin, no CORS answer");
    const char *id = header(r, "x-request-id");
    cr_assert_not_null(id);
    cr_assert_eq(strlen(id), 24);
    cr_assert_eq(strspn(id, "0123456789abcdef"), 24);
    char first[32];
    snprintf(first, sizeof(first), "%s", id);
    r = get("GET", "/api/intents/x", "");
    const char *next = header(r, "x-request-id");
    cr_assert_str_neq(next, first, "request ids repeat");
    /* one server thread: the same 16-digit prefix, then its counter's next value in 8 digits */
    cr_assert_eq(strlen(next), 24);
    cr_assert_eq(strspn(next, "0123456789abcdef"), 24);
    cr_assert_eq(memcmp(next, first, 16), 0, "%s then %s", first, next);
    unsigned long a = strtoul(first + 16, NULL, 16), b = strtoul(next + 16, NULL, 16);
    cr_assert_eq(b, (a + 1) & 0xffffffffu, "%s then %s", first, next);
}

Test(net_router_http, head_has_no_body)
{
    response_t *r = get("HEAD", "/api/intents/abc", "");
    cr_assert_eq(r->status, 200, "%s", r->raw);
    cr_assert_eq(r->body_len, 0);
    assert_header(r, "content-length", "12"); /* {"id":"abc"} */
}

Test(net_router_http, not_found_method_not_allowed_bad_path)
{
    json_t *p = assert_problem(get("GET", "/nope", ""), 404, "not-found");
    json_decref(p);
    p = assert_problem(get("GET", "/api/intents/upcoming/x/y", ""), 404, "not-found");
    json_decref(p);
    response_t *r = get("PUT", "/api/intents/abc", "");
    p = assert_problem(r, 405, "method-not-allowed");
    assert_header(r, "allow", "GET, HEAD, DELETE, OPTIONS");
    assert_header(r, "x-content-type-options", "nosniff");
    json_decref(p);
    static const char *const bad[] = {"/api/intents/%zz", "/api/intents/%00", "/api/intents/..",
                                      "/api/intents/%2e%2e", "/api/intents/%C3"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        p = assert_problem(get("GET", bad[i], ""), 400, "invalid-request");
        json_decref(p);
    }
    p = assert_problem(get("POST", "/api/intents/missing/pause", ""), 404, "not-found");
    json_decref(p);
    p = assert_problem(get("POST", "/api/intents/abc/pause", ""), 409, "conflict");
    cr_assert_str_eq(json_string_value(json_object_get(p, "detail")),
                     "only an active intent can be paused");
    json_decref(p);
}

Test(net_router_http, cors_on_answers_and_preflight)
{
    response_t *r = get("GET", "/api/intents/abc", "Origin: https://app.flowpay.dev");
    assert_header(r, "access-control-allow-origin", "https://app.flowpay.dev");
    assert_header(r, "vary", "Origin");
    cr_assert_not_null(strstr(header(r, "access-control-expose-headers"), "Retry-After"));
    cr_assert_null(header(r, "access-control-allow-credentials"));
    r = get("GET", "/api/intents/abc", "Origin: https://evil.example");
    cr_assert_eq(r->status, 200);
    cr_assert_null(header(r, "access-control-allow-origin"));
    assert_header(r, "vary", "Origin");
    /* preflight from an allowed origin */
    r = get("OPTIONS", "/api/intents/abc",
            "Origin: http://localhost:5173\r\nAccess-Control-Request-Method: DELETE\r\n"
            "Access-Control-Request-Headers: authorization, idempotency-key");
    cr_assert_eq(r->status, 204, "%s", r->raw);
    cr_assert_eq(r->body_len, 0);
    cr_assert_null(header(r, "content-length"), "a 204 carries no Content-Length");
    assert_header(r, "access-control-allow-origin", "http://localhost:5173");
    assert_header(r, "access-control-allow-methods", "GET, HEAD, DELETE, OPTIONS");
    assert_header(r, "access-control-allow-headers",
                  "Authorization, Content-Type, Idempotency-Key");
    assert_header(r, "access-control-max-age", "600");
    assert_header(r, "allow", "GET, HEAD, DELETE, OPTIONS");
    assert_header(r, "vary", "Origin");
    /* from another origin: no grant */
    r = get("OPTIONS", "/api/intents/abc",
            "Origin: https://evil.example\r\nAccess-Control-Request-Method: DELETE");
    cr_assert_eq(r->status, 204);
    cr_assert_null(header(r, "access-control-allow-origin"));
    cr_assert_null(header(r, "access-control-allow-methods"));
    /* plain OPTIONS, and OPTIONS where nothing is */
    r = get("OPTIONS", "/api/intents", "");
    cr_assert_eq(r->status, 204);
    assert_header(r, "allow", "POST, OPTIONS");
    json_t *p = assert_problem(get("OPTIONS", "/nope",
                                   "Origin: https://app.flowpay.dev\r\n"
                                   "Access-Control-Request-Method: GET"),
                               404, "not-found");
    json_decref(p);
}

static response_t *post_json(const char *content_type, const char *body, size_t len)
{
    char head[256];
    snprintf(head, sizeof(head), "POST /api/intents HTTP/1.1\r\nContent-Type: %s", content_type);
    return send_raw(head, body, len);
}

Test(net_router_http, json_bodies)
{
    const char *good = "{\"name\":\"rent\",\"amount\":\"100.5\",\"maxExecutions\":null}";
    response_t *r = post_json("application/json; charset=utf-8", good, strlen(good));
    cr_assert_eq(r->status, 201, "%s", r->raw);
    cr_assert_eq(memcmp(r->body, "{\"amount\":\"100.5\"}", r->body_len), 0);
    json_t *p =
        assert_problem(post_json("text/plain", good, strlen(good)), 415, "unsupported-media-type");
    json_decref(p);
    p = assert_problem(post_json("application/json", "{\"name\":", 8), 400, "invalid-request");
    json_decref(p);
    const char *bad = "{\"amount\":100.5,\"maxExecutions\":1.0,\"nmae\":\"x\"}";
    p = assert_problem(post_json("application/json", bad, strlen(bad)), 400, "invalid-request");
    json_t *errors = json_object_get(p, "errors");
    cr_assert_eq(json_array_size(errors), 4, "%s", resp.body);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(errors, 0), "field")),
                     "nmae");
    json_decref(p);
    size_t big = NET_JSON_BODY_LIMIT_DEFAULT + 1;
    char *huge = malloc(big);
    memset(huge, ' ', big);
    huge[0] = '{', huge[big - 1] = '}';
    p = assert_problem(post_json("application/json", huge, big), 413, "body-too-large");
    json_decref(p);
    free(huge);
}

Test(net_router_http, other_problems)
{
    response_t *r = get("GET", "/limited", "");
    json_t *p = assert_problem(r, 429, "rate-limited");
    assert_header(r, "retry-after", "30");
    json_decref(p);
    r = get("GET", "/boom", "");
    p = assert_problem(r, 500, "internal-error");
    cr_assert_not_null(
        strstr(json_string_value(json_object_get(p, "detail")), header(r, "x-request-id")));
    json_decref(p);
    r = get("GET", "/private", "");
    p = assert_problem(r, 401, "unauthorized");
    assert_header(r, "www-authenticate", "Bearer");
    json_decref(p);
    r = get("GET", "/private", "Authorization: Bearer abc.def.ghi");
    cr_assert_eq(r->status, 200);
    r = get("GET", "/query?cursor=x&limit=2%30", "");
    cr_assert_eq(r->status, 200, "%s", r->raw);
    cr_assert_eq(memcmp(r->body, "{\"limit\":\"20\"}", r->body_len), 0);
    r = get("DELETE", "/api/intents/abc", "");
    cr_assert_eq(r->status, 204, "%s", r->raw);
    cr_assert_eq(r->body_len, 0);
    cr_assert_null(header(r, "content-length"));
    cr_assert_null(header(r, "transfer-encoding"));
}
