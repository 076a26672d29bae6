#include "net/router.h"
#include <assert.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "net/problem.h"

typedef struct st_router_route_t {
    net_router_handler_fn handler;
    void *data;
    char *pattern;
} router_route_t;

/* One segment position. Literal children are kept sorted (by length, then bytes) for binary
 * search; at most one parameter child, whose name is fixed for every route through it. */
typedef struct st_router_node_t {
    char *literal; /* the segment leading here (NULL: the root or a parameter) */
    size_t literal_len;
    struct st_router_node_t **children;
    size_t child_count;
    struct st_router_node_t *param;
    char *param_name; /* of `param` */
    unsigned methods; /* NET_HTTP_* bits with a route here */
    router_route_t routes[NET_HTTP_METHOD_COUNT];
} router_node_t;

struct st_net_router_t {
    router_node_t root;
    net_router_options_fn options;
    void *options_data;
    const net_http_cors_t *cors;
};

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL)
        abort(); /* only at start, while registering routes */
    return p;
}

static char *xstrndup(const char *s, size_t len)
{
    char *p = strndup(s, len);
    if (p == NULL)
        abort();
    return p;
}

net_router_t *net_router_create(void)
{
    return xcalloc(1, sizeof(net_router_t));
}

/* Recursion depth is bounded by NET_ROUTER_MAX_SEGMENTS, the deepest a pattern can go. */
static void node_dispose(router_node_t *node, int depth)
{
    assert(depth <= NET_ROUTER_MAX_SEGMENTS);
    for (size_t i = 0; i != node->child_count; ++i) {
        node_dispose(node->children[i], depth + 1);
        free(node->children[i]);
    }
    if (node->param != NULL) {
        node_dispose(node->param, depth + 1);
        free(node->param);
    }
    for (size_t i = 0; i != NET_HTTP_METHOD_COUNT; ++i)
        free(node->routes[i].pattern);
    free(node->children);
    free(node->param_name);
    free(node->literal);
}

void net_router_free(net_router_t *router)
{
    if (router == NULL)
        return;
    node_dispose(&router->root, 0);
    free(router);
}

static int segment_cmp(const char *a, size_t a_len, const char *b, size_t b_len)
{
    if (a_len != b_len)
        return a_len < b_len ? -1 : 1;
    return memcmp(a, b, a_len);
}

/* Index of the child named `seg`, or where it would be inserted (with *found false). */
static size_t child_search(const router_node_t *node, const char *seg, size_t len, bool *found)
{
    size_t lo = 0, hi = node->child_count;
    while (lo < hi) { /* bounded: the range halves each turn */
        size_t mid = lo + (hi - lo) / 2;
        int c =
            segment_cmp(node->children[mid]->literal, node->children[mid]->literal_len, seg, len);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static router_node_t *literal_child(router_node_t *node, const char *seg, size_t len)
{
    bool found;
    size_t at = child_search(node, seg, len, &found);
    if (found)
        return node->children[at];
    router_node_t *child = xcalloc(1, sizeof(*child));
    child->literal = xstrndup(seg, len);
    child->literal_len = len;
    router_node_t **grown = realloc(node->children, (node->child_count + 1) * sizeof(*grown));
    if (grown == NULL)
        abort();
    memmove(grown + at + 1, grown + at, (node->child_count - at) * sizeof(*grown));
    grown[at] = child;
    node->children = grown;
    ++node->child_count;
    return child;
}

static bool literal_ok(const char *s, size_t len)
{
    for (size_t i = 0; i != len; ++i)
        if (!isalnum((unsigned char)s[i]) && (s[i] == '\0' || strchr("-._~", s[i]) == NULL))
            return false;
    return len != 0 && !(len == 1 && s[0] == '.') && !(len == 2 && memcmp(s, "..", 2) == 0);
}

static bool param_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > NET_ROUTER_MAX_PARAM_NAME || isdigit((unsigned char)s[0]))
        return false;
    for (size_t i = 0; i != len; ++i)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return false;
    return true;
}

static int method_index(unsigned bit)
{
    assert(bit != 0 && (bit & (bit - 1)) == 0);
    return __builtin_ctz(bit);
}

/* The child of `node` for the pattern segment `seg`: looked up only (NULL when absent, or when
 * `node` is) or created. A parameter child whose name differs is a conflict: *err is set. */
static router_node_t *step(router_node_t *node, const char *seg, size_t len, bool create,
                           const char **err)
{
    if (seg[0] != ':') {
        if (create)
            return literal_child(node, seg, len);
        bool found;
        size_t at = node != NULL ? child_search(node, seg, len, &found) : 0;
        return node != NULL && found ? node->children[at] : NULL;
    }
    if (node == NULL)
        return NULL;
    if (node->param == NULL) {
        if (!create)
            return NULL;
        node->param = xcalloc(1, sizeof(*node->param));
        node->param_name = xstrndup(seg + 1, len - 1);
    } else if (!h2o_memis(node->param_name, strlen(node->param_name), seg + 1, len - 1)) {
        *err = "another route names the parameter at this position differently";
        return NULL;
    }
    return node->param;
}

/* Checks a pattern's segment by itself: literal characters, parameter name, repeats. */
static const char *check_segment(const char *seg, size_t len, h2o_iovec_t *names,
                                 size_t *param_count)
{
    if (seg[0] != ':')
        return literal_ok(seg, len)
                   ? NULL
                   : "a literal segment must be [A-Za-z0-9._~-]+ (and not . or ..)";
    if (!param_name_ok(seg + 1, len - 1))
        return "a parameter name must be [A-Za-z_][A-Za-z0-9_]*, at most 31 characters";
    if (*param_count == NET_ROUTER_MAX_PARAMS)
        return "too many parameters";
    for (size_t i = 0; i != *param_count; ++i)
        if (h2o_memis(names[i].base, names[i].len, seg + 1, len - 1))
            return "a parameter name appears twice in the pattern";
    names[(*param_count)++] = h2o_iovec_init(seg + 1, len - 1);
    return NULL;
}

/* Walks `pattern` from the root. First with create false, which checks everything and changes
 * nothing, so that a refused pattern leaves the router as it was; then with create true. */
static const char *walk(net_router_t *router, const char *pattern, bool create, router_node_t **out)
{
    router_node_t *node = &router->root;
    h2o_iovec_t names[NET_ROUTER_MAX_PARAMS];
    const char *err = NULL, *p = pattern + 1;
    size_t param_count = 0, depth = 0;
    while (*p != '\0') { /* bounded: one segment per turn, at most NET_ROUTER_MAX_SEGMENTS */
        const char *slash = strchr(p, '/');
        size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || (slash != NULL && slash[1] == '\0'))
            return "empty segment (\"//\" or a trailing '/')";
        if (++depth > NET_ROUTER_MAX_SEGMENTS)
            return "too many segments";
        if ((err = check_segment(p, len, names, &param_count)) != NULL)
            return err;
        node = step(node, p, len, create, &err);
        if (err != NULL)
            return err;
        p += len + (slash != NULL);
    }
    *out = node;
    return NULL;
}

const char *net_router_add(net_router_t *router, const char *method, const char *pattern,
                           net_router_handler_fn handler, void *data)
{
    assert(handler != NULL);
    unsigned bit = net_http_method_bit(method, strlen(method));
    if (bit == 0)
        return "unknown method";
    if (pattern[0] != '/')
        return "a pattern starts with '/'";
    router_node_t *node;
    const char *err = walk(router, pattern, false, &node);
    if (err != NULL)
        return err;
    if (node != NULL && (node->methods & bit) != 0)
        return "this method and pattern are already registered";
    err = walk(router, pattern, true, &node);
    assert(err == NULL && node != NULL && (node->methods & bit) == 0);
    node->routes[method_index(bit)] =
        (router_route_t){handler, data, xstrndup(pattern, strlen(pattern))};
    node->methods |= bit;
    return NULL;
}

void net_router_set_options(net_router_t *router, net_router_options_fn fn, void *data)
{
    router->options = fn;
    router->options_data = data;
}

void net_router_set_cors(net_router_t *router, const net_http_cors_t *cors)
{
    assert(cors != NULL);
    router->cors = cors;
    net_router_set_options(router, net_http_cors_preflight, (void *)cors);
}

/* The child of `node` that the decoded segment leads to: a literal first, else the parameter
 * (recorded in `m`), else NULL. */
static const router_node_t *descend(const router_node_t *node, const char *seg, size_t len,
                                    net_router_match_t *m)
{
    bool found;
    size_t at = child_search(node, seg, len, &found);
    if (found)
        return node->children[at];
    if (node->param == NULL || len == 0) /* a parameter is never empty */
        return NULL;
    assert(m->param_count < NET_ROUTER_MAX_PARAMS); /* no pattern has more, see check_segment */
    m->params[m->param_count++] = (net_router_param_t){node->param_name, h2o_iovec_init(seg, len)};
    return node->param;
}

/* Walks the path's segments down the trie; NULL when it leaves the trie (404), and also NULL
 * with m->error set when a segment is malformed (400). */
static const router_node_t *walk_path(const net_router_t *router, const char *path, size_t path_len,
                                      char *scratch, net_router_match_t *m)
{
    const router_node_t *node = &router->root;
    const char *p = path + 1, *end = path + path_len;
    for (size_t depth = 0; path_len > 1; ++depth) { /* bounded by NET_ROUTER_MAX_SEGMENTS */
        if (depth == NET_ROUTER_MAX_SEGMENTS)
            return NULL;
        const char *slash = memchr(p, '/', (size_t)(end - p));
        size_t raw_len = slash != NULL ? (size_t)(slash - p) : (size_t)(end - p), len;
        if (!net_http_pct_decode(p, raw_len, scratch, &len, 0)) {
            m->error = "the path holds a malformed or forbidden percent-encoding";
            return NULL;
        }
        if ((len == 1 && scratch[0] == '.') || (len == 2 && memcmp(scratch, "..", 2) == 0)) {
            m->error = "the path must not hold \".\" or \"..\" segments";
            return NULL;
        }
        if ((node = descend(node, scratch, len, m)) == NULL)
            return NULL;
        scratch += len + 1;
        if (slash == NULL)
            break;
        p = slash + 1;
    }
    return node;
}

net_router_result_t net_router_match(const net_router_t *router, const char *method,
                                     size_t method_len, const char *path, size_t path_len,
                                     char *scratch, net_router_match_t *match)
{
    memset(match, 0, sizeof(*match));
    if (path_len == 0 || path[0] != '/') {
        match->error = "the path must start with '/'";
        return NET_ROUTER_BAD_PATH;
    }
    const router_node_t *node = walk_path(router, path, path_len, scratch, match);
    if (node == NULL || node->methods == 0) {
        match->param_count = 0;
        return match->error != NULL ? NET_ROUTER_BAD_PATH : NET_ROUTER_NOT_FOUND;
    }
    match->allowed = node->methods | NET_HTTP_OPTIONS |
                     ((node->methods & NET_HTTP_GET) != 0 ? NET_HTTP_HEAD : 0);
    unsigned bit = net_http_method_bit(method, method_len);
    if (bit == NET_HTTP_HEAD && (node->methods & NET_HTTP_HEAD) == 0)
        bit = NET_HTTP_GET; /* HEAD is GET without the body, which h2o leaves out */
    if (bit == 0 || (node->methods & bit) == 0)
        return NET_ROUTER_METHOD_NOT_ALLOWED;
    const router_route_t *route = &node->routes[method_index(bit)];
    match->pattern = route->pattern;
    match->handler = route->handler;
    match->data = route->data;
    return NET_ROUTER_FOUND;
}

/* Recursion depth is bounded by NET_ROUTER_MAX_SEGMENTS, like node_dispose's. */
static void node_each(const router_node_t *node, int depth, net_router_each_fn fn, void *ctx)
{
    static const char *const names[NET_HTTP_METHOD_COUNT] = {"GET",   "HEAD",   "POST",   "PUT",
                                                             "PATCH", "DELETE", "OPTIONS"};
    assert(depth <= NET_ROUTER_MAX_SEGMENTS);
    for (size_t i = 0; i != NET_HTTP_METHOD_COUNT; ++i)
        if (node->routes[i].pattern != NULL)
            fn(names[i], node->routes[i].pattern, ctx);
    for (size_t i = 0; i != node->child_count; ++i)
        node_each(node->children[i], depth + 1, fn, ctx);
    if (node->param != NULL)
        node_each(node->param, depth + 1, fn, ctx);
}

void net_router_each(const net_router_t *router, net_router_each_fn fn, void *ctx)
{
    node_each(&router->root, 0, fn, ctx);
}

h2o_iovec_t net_router_param(const net_router_match_t *match, const char *name)
{
    assert(match->param_count <= NET_ROUTER_MAX_PARAMS);
    for (size_t i = 0; i != match->param_count; ++i)
        if (strcmp(match->params[i].name, name) == 0)
            return match->params[i].value;
    return h2o_iovec_init(NULL, 0);
}

int net_router_handle(h2o_req_t *req, void *data)
{
    const net_router_t *router = data;
    /* before dispatching, so that every answer carries them, the handlers' included */
    net_http_add_security_headers(req);
    net_http_request_id(req);
    if (router->cors != NULL)
        net_http_cors_add_headers(router->cors, req);
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    char *scratch = h2o_mem_alloc_pool(&req->pool, path_len + NET_ROUTER_MAX_SEGMENTS + 1);
    net_router_match_t *m = h2o_mem_alloc_pool(&req->pool, sizeof(*m));
    switch (net_router_match(router, req->method.base, req->method.len, req->path.base, path_len,
                             scratch, m)) {
    case NET_ROUTER_FOUND:
        if (m->handler(req, m, m->data) != 0)
            return net_problem_not_found(req, "no resource at this path");
        return 0;
    case NET_ROUTER_NOT_FOUND:
        return net_problem_not_found(req, "no resource at this path");
    case NET_ROUTER_BAD_PATH:
        return net_problem_bad_request(req, m->error, NULL);
    case NET_ROUTER_METHOD_NOT_ALLOWED:
        if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("OPTIONS")))
            return router->options != NULL
                       ? router->options(req, m->allowed, router->options_data)
                       : net_http_cors_preflight(req, m->allowed, NULL); /* 204 with Allow */
        return net_problem_method_not_allowed(req, m->allowed);
    }
    assert(!"unreachable");
    return -1;
}
