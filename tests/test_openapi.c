/* GET /api/openapi.json: an OpenAPI 3.1 document, served as built from actors/openapi.json, that
 * cannot drift from the server: every route the router serves is in it (the router's own list,
 * from the API as main builds it), and every path and method it names is served by the real
 * binary (OPTIONS answers the path's methods in Allow). */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "actors/api.h"
#include "net/jwt.h"
#include "net/router.h"
#include "support/api_server.h"

#define MAX_ROUTES 128

static json_t *load_file(void)
{
    json_error_t err;
    json_t *doc = json_load_file(OPENAPI_FILE, 0, &err);
    cr_assert_not_null(doc, "%s:%d: %s", OPENAPI_FILE, err.line, err.text);
    return doc;
}

/* "/api/intents/:id/pause" -> "/api/intents/{id}/pause" */
static void to_openapi_path(const char *pattern, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = pattern; *p != '\0' && n + 2 < cap; ++p) {
        if (*p == ':') {
            out[n++] = '{';
            while (p[1] != '\0' && p[1] != '/' && n + 2 < cap)
                out[n++] = *++p;
            out[n++] = '}';
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
}

typedef struct st_routes_t {
    size_t count;
    char items[MAX_ROUTES][160]; /* "get /api/intents/{id}" */
} routes_t;

static void collect(const char *method, const char *pattern, void *ctx)
{
    routes_t *r = ctx;
    cr_assert_lt(r->count, MAX_ROUTES);
    char path[128];
    to_openapi_path(pattern, path, sizeof(path));
    char *item = r->items[r->count++];
    snprintf(item, 160, "%s %s", method, path);
    for (char *c = item; *c != ' '; ++c)
        *c = (char)(*c - 'A' + 'a');
}

static bool has(const routes_t *r, const char *item)
{
    for (size_t i = 0; i != r->count; ++i)
        if (strcmp(r->items[i], item) == 0)
            return true;
    return false;
}

/* The document's operations on /api paths, as "method path". */
static void document_routes(json_t *doc, routes_t *out)
{
    static const char *const methods[] = {"get", "put", "post", "delete", "patch", "head"};
    const char *path;
    json_t *item;
    json_object_foreach(json_object_get(doc, "paths"), path, item)
    {
        if (strncmp(path, "/api/", 5) != 0)
            continue;
        for (size_t i = 0; i != sizeof(methods) / sizeof(methods[0]); ++i)
            if (json_object_get(item, methods[i]) != NULL) {
                cr_assert_lt(out->count, MAX_ROUTES);
                snprintf(out->items[out->count++], 160, "%s %s", methods[i], path);
            }
    }
}

Test(openapi, every_served_route_is_documented_and_every_documented_route_served)
{
    char err[256];
    net_jwt_keys_t *keys = net_jwt_keys_load(JWT_SECRET, NULL, err, sizeof(err));
    cr_assert_not_null(keys, "%s", err);
    net_router_t *router = net_router_create();
    api_config_t config = {.siwe_domain = "localhost",
                           .siwe_uri = "http://localhost",
                           .chain_id = 31337,
                           .jwt_keys = keys};
    api_t *api = api_create(&config, NULL, router);
    routes_t served = {0}, documented = {0};
    net_router_each(router, collect, &served);
    json_t *doc = load_file();
    document_routes(doc, &documented);
    cr_assert_gt(served.count, 20, "the router lists %zu routes", served.count);
    for (size_t i = 0; i != served.count; ++i)
        cr_expect(has(&documented, served.items[i]), "served but not documented: %s",
                  served.items[i]);
    for (size_t i = 0; i != documented.count; ++i)
        cr_expect(has(&served, documented.items[i]), "documented but not served: %s",
                  documented.items[i]);
    json_decref(doc);
    api_free(api);
    net_router_free(router);
    net_jwt_keys_free(keys);
}

/* One request returning the status, the body and the Allow header's value. */
static int request(const char *method, const char *path, char *body, size_t cap, char *allow,
                   size_t allow_cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    char req[512];
    int n =
        snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                 method, path);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    static char resp[262144];
    size_t len = 0;
    ssize_t r;
    while (len + 1 < sizeof(resp) && (r = read(fd, resp + len, sizeof(resp) - 1 - len)) > 0)
        len += (size_t)r;
    resp[len] = '\0';
    close(fd);
    int status = 0;
    sscanf(resp, "HTTP/1.1 %d", &status);
    char *end = strstr(resp, "\r\n\r\n");
    cr_assert_not_null(end);
    snprintf(body, cap, "%s", end + 4);
    *end = '\0';
    allow[0] = '\0';
    for (char *line = strstr(resp, "\r\n"); line != NULL; line = strstr(line + 2, "\r\n"))
        if (strncasecmp(line + 2, "allow:", 6) == 0) {
            const char *value = line + 8 + strspn(line + 8, " ");
            snprintf(allow, allow_cap, "%.*s", (int)strcspn(value, "\r"), value);
            break;
        }
    return status;
}

/* The Allow value the router answers for a path whose operations are `item`'s. */
static void expected_allow(json_t *item, char *out, size_t cap)
{
    static const char *const order[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"};
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i != 7; ++i) {
        char lower[8];
        for (size_t k = 0; k <= strlen(order[i]); ++k)
            lower[k] = (char)(order[i][k] >= 'A' ? order[i][k] + 32 : 0);
        bool on = json_object_get(item, lower) != NULL || strcmp(order[i], "OPTIONS") == 0 ||
                  (strcmp(order[i], "HEAD") == 0 && json_object_get(item, "get") != NULL);
        if (on)
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n != 0 ? ", " : "", order[i]);
    }
}

Test(openapi, the_binary_serves_the_document_and_its_paths, .timeout = 60,
     .fini = kill_leftover_server)
{
    start_server();
    static char body[262144];
    char allow[128], want[128], path[256];
    cr_assert_eq(request("GET", "/api/openapi.json", body, sizeof(body), allow, sizeof(allow)),
                 200);
    json_error_t err;
    json_t *served = json_loads(body, 0, &err);
    cr_assert_not_null(served, "not JSON: %s", err.text);
    const char *version = json_string_value(json_object_get(served, "openapi"));
    cr_assert(version != NULL && strncmp(version, "3.1.", 4) == 0, "openapi %s", version);
    json_t *bearer = json_object_get(
        json_object_get(json_object_get(served, "components"), "securitySchemes"), "bearerAuth");
    cr_assert_str_eq(json_string_value(json_object_get(bearer, "scheme")), "bearer");
    cr_assert_str_eq(json_string_value(json_object_get(bearer, "bearerFormat")), "JWT");
    json_t *file = load_file();
    cr_assert(json_equal(served, file), "the served document is not actors/openapi.json");
    /* every documented path answers its methods, as the real binary routes them */
    const char *doc_path;
    json_t *item;
    json_object_foreach(json_object_get(served, "paths"), doc_path, item)
    {
        to_openapi_path(doc_path, path, sizeof(path)); /* no ':' in it: unchanged */
        char *brace;
        while ((brace = strchr(path, '{')) != NULL) { /* a parameter: any UUID */
            char rest[256];
            snprintf(rest, sizeof(rest), "%s", strchr(brace, '}') + 1);
            snprintf(brace, sizeof(path) - (size_t)(brace - path),
                     "00000000-0000-4000-8000-000000000000%s", rest);
        }
        if (strncmp(doc_path, "/api/", 5) == 0) {
            cr_assert_eq(request("OPTIONS", path, body, sizeof(body), allow, sizeof(allow)), 204,
                         "OPTIONS %s: %s", path, body);
            expected_allow(item, want, sizeof(want));
            cr_expect_str_eq(allow, want, "%s: Allow \"%s\", documented \"%s\"", doc_path, allow,
                             want);
        } else { /* the operational routes: /healthz, /readyz, /metrics */
            int status = request("GET", path, body, sizeof(body), allow, sizeof(allow));
            cr_expect(status == 200, "GET %s: %d", path, status);
        }
    }
    json_decref(file);
    json_decref(served);
    stop_server();
}

/* ---- answers against the document's schemas ---- */

/* The component schema `name` of the document. */
static json_t *schema(json_t *doc, const char *name)
{
    json_t *s =
        json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"), name);
    cr_assert_not_null(s, "no schema %s", name);
    return s;
}

/* `obj` has every member `name`'s schema requires, and none it does not name. */
static void expect_shape(json_t *doc, const char *name, json_t *obj)
{
    json_t *s = schema(doc, name), *props = json_object_get(s, "properties"), *v;
    cr_assert(json_is_object(obj), "%s: not an object", name);
    size_t i;
    json_array_foreach(json_object_get(s, "required"), i, v)
    {
        const char *key = json_string_value(v);
        cr_expect_not_null(json_object_get(obj, key), "%s: the answer lacks required \"%s\"", name,
                           key);
    }
    const char *key;
    json_object_foreach(obj, key, v)
    {
        cr_expect_not_null(json_object_get(props, key), "%s: the answer's \"%s\" is not documented",
                           name, key);
    }
}

static json_t *get_json(const char *path, const char *token, char *buf, size_t cap)
{
    cr_assert_eq(http("GET", path, token, NULL, NULL, buf, cap), 200, "%s: %s", path, buf);
    json_t *j = json_loads(buf, 0, NULL);
    cr_assert_not_null(j, "%s: not JSON", path);
    return j;
}

Test(openapi, answers_have_the_documented_fields, .timeout = 60, .fini = kill_leftover_server)
{
    static const char *const env[] = {
        "INTENT_CONTRACT_ADDRESS=0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "USDC_ADDRESS=0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512", NULL};
    start_server_env(env);
    static char buf[65536];
    char token[4096], path[128], sql[192];
    session(KEY_A, token, sizeof(token));
    json_t *doc = load_file();
    /* due within the hour, so that it has an upcoming execution in the window asked below */
    time_t start = time(NULL) + 3600;
    struct tm tm;
    char json[512], at[32];
    strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&start, &tm));
    snprintf(json, sizeof(json),
             "{\"name\":\"rent\",\"recipient\":\"0x90F79bf6EB2c4f870365E785982E1f101E93b906\","
             "\"token\":\"USDC\",\"amount\":\"1\",\"frequency\":\"daily\",\"startAt\":\"%s\"}",
             at);
    cr_assert_eq(http("POST", "/api/intents", token, NULL, json, buf, sizeof(buf)), 201, "%s", buf);
    json_t *created = json_loads(buf, 0, NULL);
    expect_shape(doc, "Intent", created);
    const char *id = json_string_value(json_object_get(created, "id"));
    cr_assert_not_null(id);
    /* live as far as the database is concerned, so that it has upcoming executions */
    snprintf(sql, sizeof(sql),
             "UPDATE intents SET status = 'active', signature = decode(repeat('44', 65), 'hex')"
             " WHERE id = '%s'",
             id);
    db_exec(db_url, sql);
    snprintf(path, sizeof(path), "/api/intents/%s", id);
    json_t *got = get_json(path, token, buf, sizeof(buf));
    expect_shape(doc, "Intent", got);
    json_decref(got);
    json_decref(created);
    json_t *page = get_json("/api/intents/upcoming?limit=1", token, buf, sizeof(buf));
    json_t *item = json_array_get(json_object_get(page, "items"), 0);
    cr_assert_not_null(item, "no upcoming execution: %s", buf);
    expect_shape(doc, "Upcoming", item);
    json_decref(page);
    json_t *user = get_json("/api/user/profile", token, buf, sizeof(buf));
    expect_shape(doc, "User", user);
    json_decref(user);
    cr_assert_eq(http("GET", "/api/intents?limit=0", token, NULL, NULL, buf, sizeof(buf)), 400);
    json_t *problem = json_loads(buf, 0, NULL);
    expect_shape(doc, "Problem", problem);
    json_decref(problem);
    json_decref(doc);
    stop_server();
}
