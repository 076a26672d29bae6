#include "net/http_util.h"
#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Index order is the order methods appear in an Allow header. */
static const struct {
    const char *name;
    size_t len;
    unsigned bit;
} methods[NET_HTTP_METHOD_COUNT] = {
    {"GET", 3, NET_HTTP_GET},         {"HEAD", 4, NET_HTTP_HEAD},   {"POST", 4, NET_HTTP_POST},
    {"PUT", 3, NET_HTTP_PUT},         {"PATCH", 5, NET_HTTP_PATCH}, {"DELETE", 6, NET_HTTP_DELETE},
    {"OPTIONS", 7, NET_HTTP_OPTIONS},
};

unsigned net_http_method_bit(const char *name, size_t len)
{
    for (size_t i = 0; i != NET_HTTP_METHOD_COUNT; ++i)
        if (len == methods[i].len && memcmp(name, methods[i].name, len) == 0)
            return methods[i].bit;
    return 0;
}

size_t net_http_methods_format(unsigned mask, char *buf, size_t cap)
{
    assert(cap > 0);
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i != NET_HTTP_METHOD_COUNT; ++i) {
        if ((mask & methods[i].bit) == 0)
            continue;
        int n = snprintf(buf + len, cap - len, "%s%s", len == 0 ? "" : ", ", methods[i].name);
        assert(n > 0 && (size_t)n < cap - len); /* 64 bytes hold all seven */
        len += (size_t)n;
    }
    return len;
}

const char *net_http_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

/* Length of the UTF-8 sequence starting at s[0], 0 when it is not well-formed. The ranges of
 * the second byte are RFC 3629's table: they exclude overlongs, surrogates and > U+10FFFF. */
static size_t utf8_sequence(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n = c >= 0xc2 && c <= 0xdf   ? 2
               : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4
                                        : 0;
    if (n == 0 || n > avail)
        return 0;
    unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; ++i)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

bool net_http_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) { /* bounded: every turn advances by at least one byte */
        size_t n = utf8_sequence(p + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* True when `c` is one of the characters of `set` (never for NUL, unlike a bare strchr). */
static bool in_set(char c, const char *set)
{
    return c != '\0' && strchr(set, c) != NULL;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool net_http_pct_decode(const char *src, size_t len, char *dst, size_t *dst_len, unsigned flags)
{
    size_t out = 0;
    unsigned char high = 0; /* the OR of the decoded bytes: ASCII when below 0x80 */
    for (size_t i = 0; i < len; ++i) {
        unsigned char c = (unsigned char)src[i];
        if (c < 0x21 || c > 0x7e) /* raw spaces, controls and 8-bit bytes must be encoded */
            return false;
        if (c == '%') {
            int hi = i + 2 < len ? hex_value(src[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(src[i + 2]) : -1;
            if (lo < 0)
                return false;
            c = (unsigned char)(hi << 4 | lo);
            if (c < 0x20 || c == 0x7f) /* NUL and controls would reach logs and C strings */
                return false;
            i += 2;
        } else if (c == '+' && (flags & NET_HTTP_PCT_PLUS_IS_SPACE) != 0) {
            c = ' ';
        }
        high |= c;
        dst[out++] = (char)c;
    }
    dst[out] = '\0';
    *dst_len = out;
    /* decoded bytes end up in JSON answers and jansson refuses strings that are not UTF-8
     * (ASCII always is: the common case, every segment of a path, skips the walk) */
    return high < 0x80 || net_http_utf8_valid(dst, out);
}

/* Finds the next "name[=value]" pair of a query string starting at *pos. */
static bool next_pair(const char *q, size_t len, size_t *pos, h2o_iovec_t *name, h2o_iovec_t *value)
{
    if (*pos >= len)
        return false;
    const char *start = q + *pos, *amp = memchr(start, '&', len - *pos);
    size_t pair_len = amp != NULL ? (size_t)(amp - start) : len - *pos;
    *pos += pair_len + 1;
    const char *eq = memchr(start, '=', pair_len);
    *name = h2o_iovec_init(start, eq != NULL ? (size_t)(eq - start) : pair_len);
    *value = eq != NULL ? h2o_iovec_init(eq + 1, pair_len - name->len - 1) : h2o_iovec_init("", 0);
    return true;
}

net_http_query_result_t net_http_query_get(const char *query, size_t query_len, const char *name,
                                           char *buf, size_t cap, h2o_iovec_t *value)
{
    assert(cap > 0);
    size_t pos = 0, name_len = strlen(name);
    h2o_iovec_t raw_name, raw_value;
    net_http_query_result_t result = NET_HTTP_QUERY_ABSENT;
    /* bounded: each turn consumes at least one byte of the query */
    while (next_pair(query, query_len, &pos, &raw_name, &raw_value)) {
        /* names are compared raw: the API's parameter names never need encoding */
        if (!h2o_memis(raw_name.base, raw_name.len, name, name_len))
            continue;
        if (result != NET_HTTP_QUERY_ABSENT || raw_value.len >= cap)
            return NET_HTTP_QUERY_INVALID;
        size_t n;
        if (!net_http_pct_decode(raw_value.base, raw_value.len, buf, &n,
                                 NET_HTTP_PCT_PLUS_IS_SPACE))
            return NET_HTTP_QUERY_INVALID;
        *value = h2o_iovec_init(buf, n);
        result = NET_HTTP_QUERY_FOUND;
    }
    return result;
}

h2o_iovec_t net_http_query_of(h2o_req_t *req)
{
    if (req->query_at == SIZE_MAX || req->query_at >= req->path.len)
        return h2o_iovec_init("", 0);
    return h2o_iovec_init(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1);
}

/* RFC 6750 b64token characters: ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/". A table,
 * since every authenticated request walks its token's few hundred bytes (a strchr per byte was
 * ~4 % of intentd's userland time per cached GET). */
static const bool token68_chars[256] = {
    ['-'] = true, ['.'] = true,         ['_'] = true,         ['~'] = true,         ['+'] = true,
    ['/'] = true, ['0' ... '9'] = true, ['A' ... 'Z'] = true, ['a' ... 'z'] = true,
};

/* RFC 6750 b64token: the characters above, then "=" padding */
static bool is_token68(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    const bool *ok = token68_chars;
    size_t i = 0;
    /* eight at a time while all eight are token characters, one branch each; then one by one
     * from where a group held something else (or fewer than eight were left) */
    while (i + 8 <= len && (ok[u[i]] & ok[u[i + 1]] & ok[u[i + 2]] & ok[u[i + 3]] & ok[u[i + 4]] &
                            ok[u[i + 5]] & ok[u[i + 6]] & ok[u[i + 7]]))
        i += 8;
    for (; i < len && ok[u[i]]; ++i)
        ;
    if (i == 0)
        return false;
    for (; i < len && s[i] == '='; ++i)
        ;
    return i == len;
}

bool net_http_parse_bearer(const char *value, size_t len, h2o_iovec_t *token)
{
    if (len < 7 || !h2o_lcstris(value, 6, H2O_STRLIT("bearer")) || value[6] != ' ')
        return false;
    size_t i = 7;
    for (; i < len && value[i] == ' '; ++i)
        ;
    size_t end = len;
    for (; end > i && value[end - 1] == ' '; --end)
        ;
    if (!is_token68(value + i, end - i))
        return false;
    *token = h2o_iovec_init(value + i, end - i);
    return true;
}

bool net_http_bearer_token(h2o_req_t *req, h2o_iovec_t *token)
{
    ssize_t at = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (at < 0 || h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, at) >= 0)
        return false;
    h2o_iovec_t v = req->headers.entries[at].value;
    return net_http_parse_bearer(v.base, v.len, token);
}

static __thread uint64_t request_id_prefix, request_id_counter;
/* the prefix's 16 lowercase hex digits, formatted once per thread (an snprintf per request was
 * ~6 % of intentd's userland time per cached GET) */
static __thread char request_id_prefix_hex[16];

/* `n` lowercase hex digits of the low bits of `v`, most significant first. */
static void hex_digits(char *out, uint64_t v, int n)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = n - 1; i >= 0; --i, v >>= 4)
        out[i] = digits[v & 0xf];
}

const char *net_http_request_id(h2o_req_t *req)
{
    ssize_t at = h2o_find_header_by_str(&req->res.headers, H2O_STRLIT("x-request-id"), -1);
    if (at >= 0)
        return req->res.headers.entries[at].value.base;
    if (request_id_prefix == 0) {
        if (getrandom(&request_id_prefix, sizeof(request_id_prefix), GRND_NONBLOCK) !=
            sizeof(request_id_prefix))
            request_id_prefix = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&request_id_prefix;
        hex_digits(request_id_prefix_hex, request_id_prefix, 16);
    }
    /* "%016" PRIx64 "%08" PRIx64 of the prefix and the counter's low 32 bits */
    char *id = h2o_mem_alloc_pool(&req->pool, 25);
    memcpy(id, request_id_prefix_hex, 16);
    hex_digits(id + 16, ++request_id_counter & 0xffffffffu, 8);
    id[24] = '\0';
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL, id,
                          24);
    return id;
}

void net_http_add_security_headers(h2o_req_t *req)
{
    h2o_mem_pool_t *pool = &req->pool;
    h2o_headers_t *h = &req->res.headers;
    /* room for these, the request id, CORS and the content type at once: the vector would
     * otherwise be reallocated and copied as it doubles from 4 */
    h2o_vector_reserve(pool, h, h->size + 12);
    h2o_add_header_by_str(pool, h, H2O_STRLIT("x-content-type-options"), 0, NULL,
                          H2O_STRLIT("nosniff"));
    h2o_add_header_by_str(pool, h, H2O_STRLIT("referrer-policy"), 0, NULL,
                          H2O_STRLIT("no-referrer"));
    h2o_add_header_by_str(pool, h, H2O_STRLIT("x-frame-options"), 0, NULL, H2O_STRLIT("DENY"));
    h2o_add_header(pool, h, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-store"));
    /* an API answer is never a document: nothing may load, run or frame it */
    h2o_add_header_by_str(pool, h, H2O_STRLIT("content-security-policy"), 0, NULL,
                          H2O_STRLIT("default-src 'none'; frame-ancestors 'none'"));
}

/* Optional whitespace (RFC 9110 5.6.3). */
static size_t skip_ows(const char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        ++i;
    return i;
}

/* A qvalue, "0" ["." 0*3DIGIT] or "1" ["." 0*3("0")], as thousandths; -1 when malformed. */
static int parse_qvalue(const char *s, size_t len)
{
    if (len == 0 || (s[0] != '0' && s[0] != '1') || (len > 1 && s[1] != '.') || len > 5)
        return -1;
    int q = (s[0] - '0') * 1000, scale = 100;
    for (size_t i = 2; i < len; ++i, scale /= 10) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        q += (s[i] - '0') * scale;
    }
    return q <= 1000 ? q : -1;
}

/* Weighs one element of an Accept-Encoding list, `coding [OWS ";" OWS "q=" qvalue]` without
 * its surrounding whitespace: *gzip or *any takes the element's weight when it names gzip or
 * "*" (the larger, when listed twice). Anything else, or a malformed element, changes neither. */
static void weigh_coding(const char *s, size_t len, int *gzip, int *any)
{
    size_t end = 0;
    while (end < len && s[end] != ';' && s[end] != ' ' && s[end] != '\t')
        ++end;
    int q = 1000;
    size_t i = skip_ows(s, len, end);
    if (i < len) {
        if (s[i] != ';')
            return;
        i = skip_ows(s, len, i + 1);
        if (len - i < 2 || (s[i] != 'q' && s[i] != 'Q') || s[i + 1] != '=' ||
            (q = parse_qvalue(s + i + 2, len - i - 2)) < 0)
            return;
    }
    int *target = NULL;
    if (h2o_lcstris(s, end, H2O_STRLIT("gzip")) || h2o_lcstris(s, end, H2O_STRLIT("x-gzip")))
        target = gzip;
    else if (end == 1 && s[0] == '*')
        target = any;
    if (target != NULL && q > *target)
        *target = q;
}

bool net_http_gzip_acceptable(const h2o_iovec_t *values, size_t count)
{
    int gzip = -1, any = -1; /* -1: not listed */
    for (size_t v = 0; v != count; ++v) {
        const char *s = values[v].base;
        size_t len = values[v].len;
        if (len == 0)
            continue;
        for (size_t start = 0; start <= len;) {
            const char *comma = memchr(s + start, ',', len - start);
            size_t stop = comma != NULL ? (size_t)(comma - s) : len;
            size_t from = skip_ows(s, stop, start), to = stop;
            while (to > from && (s[to - 1] == ' ' || s[to - 1] == '\t'))
                --to;
            if (to > from)
                weigh_coding(s + from, to - from, &gzip, &any);
            start = stop + 1;
        }
    }
    return gzip >= 0 ? gzip > 0 : any > 0;
}

bool net_http_accepts_gzip(h2o_req_t *req)
{
    h2o_iovec_t values[8];
    size_t count = 0;
    for (ssize_t at = -1;
         count != sizeof(values) / sizeof(values[0]) &&
         (at = h2o_find_header(&req->headers, H2O_TOKEN_ACCEPT_ENCODING, at)) >= 0;)
        values[count++] = req->headers.entries[at].value;
    return net_http_gzip_acceptable(values, count);
}

void net_http_add_vary(h2o_req_t *req, const char *name, size_t len)
{
    /* not h2o_set_header_token: its de-duplication compares with the needle as given, so a
     * mixed-case name would be added again; the check is made here with its lowercase form, and
     * the name goes on the last Vary line found on the way */
    char lower[64];
    assert(len <= sizeof(lower));
    for (size_t i = 0; i != len; ++i)
        lower[i] = (char)tolower((unsigned char)name[i]);
    h2o_header_t *last = NULL;
    for (ssize_t at = -1; (at = h2o_find_header(&req->res.headers, H2O_TOKEN_VARY, at)) >= 0;) {
        last = &req->res.headers.entries[at];
        if (h2o_contains_token(last->value.base, last->value.len, lower, len, ','))
            return;
    }
    if (last != NULL)
        last->value = h2o_concat(&req->pool, last->value, h2o_iovec_init(H2O_STRLIT(", ")),
                                 h2o_iovec_init(name, len));
    else
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_VARY, NULL, name, len);
}

void net_http_send_owned(h2o_req_t *req, int status, const char *content_type, h2o_iovec_t body)
{
    static h2o_generator_t generator = {NULL, NULL}; /* the whole body goes in one h2o_send */
    assert(status >= 100 && status <= 599);
    req->res.status = status;
    req->res.reason = net_http_reason(status);
    /* a length lets h2o skip chunked encoding; 204 and 304 must not carry one (RFC 9110) */
    req->res.content_length = status == 204 || status == 304 ? SIZE_MAX : body.len;
    if (content_type != NULL)
        h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, content_type,
                       strlen(content_type), 1);
    h2o_start_response(req, &generator);
    bool head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    h2o_send(req, &body, head || body.len == 0 ? 0 : 1, H2O_SEND_STATE_FINAL);
}

void net_http_send(h2o_req_t *req, int status, const char *content_type, const char *body,
                   size_t body_len)
{
    h2o_iovec_t copy =
        body_len == 0 ? h2o_iovec_init("", 0) : h2o_strdup(&req->pool, body, body_len);
    net_http_send_owned(req, status, content_type, copy);
}

/* scheme "://" host [":" port]: http or https; the host a DNS name, an IPv4 address or an IPv6
 * literal in brackets; the port 1 to 5 digits; nothing else (no userinfo, path, query) */
static bool origin_valid(const char *s, size_t len)
{
    size_t i = len > 7 && memcmp(s, "http://", 7) == 0    ? 7
               : len > 8 && memcmp(s, "https://", 8) == 0 ? 8
                                                          : 0;
    if (i == 0)
        return false;
    size_t host_start = i;
    if (s[i] == '[') {
        for (++i; i < len && (isxdigit((unsigned char)s[i]) || in_set(s[i], ":.")); ++i)
            ;
        if (i == len || s[i++] != ']')
            return false;
    } else {
        for (; i < len && (isalnum((unsigned char)s[i]) || in_set(s[i], "-.")); ++i)
            ;
    }
    if (i == host_start)
        return false;
    if (i == len)
        return true;
    size_t port_start = ++i;
    if (s[port_start - 1] != ':')
        return false;
    for (; i < len && isdigit((unsigned char)s[i]); ++i)
        ;
    return i == len && i > port_start && i - port_start <= 5;
}

bool net_http_cors_init(net_http_cors_t *cors, const char *list, char *err, size_t err_size)
{
    memset(cors, 0, sizeof(*cors));
    const char *p = list != NULL ? list : "";
    /* bounded: each turn consumes one comma-separated entry */
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
        const char *s = p;
        p += n + (end != NULL);
        for (; n > 0 && isspace((unsigned char)*s); ++s, --n)
            ;
        for (; n > 0 && isspace((unsigned char)s[n - 1]); --n)
            ;
        if (n == 0)
            continue;
        if (!origin_valid(s, n) || n > NET_HTTP_CORS_MAX_ORIGIN_LEN) {
            snprintf(err, err_size,
                     "CORS_ORIGINS: '%.*s' is not an origin (scheme://host[:port], http or https, "
                     "no path or trailing slash)",
                     (int)(n > 80 ? 80 : n), s);
            return false;
        }
        if (cors->count == NET_HTTP_CORS_MAX_ORIGINS) {
            snprintf(err, err_size, "CORS_ORIGINS: more than %d origins",
                     NET_HTTP_CORS_MAX_ORIGINS);
            return false;
        }
        memcpy(cors->storage[cors->count], s, n);
        cors->origins[cors->count] = h2o_iovec_init(cors->storage[cors->count], n);
        ++cors->count;
    }
    return true;
}

bool net_http_cors_allows(const net_http_cors_t *cors, const char *origin, size_t len)
{
    assert(cors->count <= NET_HTTP_CORS_MAX_ORIGINS);
    for (size_t i = 0; i != cors->count; ++i)
        if (h2o_lcstris(origin, len, cors->origins[i].base, cors->origins[i].len))
            return true;
    return false;
}

/* The request's Origin header when it is sent once and allowed; NULL otherwise. */
static const h2o_iovec_t *allowed_origin(const net_http_cors_t *cors, h2o_req_t *req)
{
    ssize_t at = h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), -1);
    if (cors == NULL || at < 0 ||
        h2o_find_header_by_str(&req->headers, H2O_STRLIT("origin"), at) >= 0)
        return NULL;
    const h2o_iovec_t *origin = &req->headers.entries[at].value;
    return net_http_cors_allows(cors, origin->base, origin->len) ? origin : NULL;
}

void net_http_cors_add_headers(const net_http_cors_t *cors, h2o_req_t *req)
{
    /* caches must not serve one origin's answer to another, allowed or not */
    net_http_add_vary(req, H2O_STRLIT("Origin"));
    const h2o_iovec_t *origin = allowed_origin(cors, req);
    if (origin == NULL)
        return;
    h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_ACCESS_CONTROL_ALLOW_ORIGIN,
                   origin->base, origin->len, 1);
    h2o_set_header_by_str(
        &req->pool, &req->res.headers, H2O_STRLIT("access-control-expose-headers"), 0,
        H2O_STRLIT("Retry-After, X-Request-Id, Location, Idempotent-Replayed"), 1);
}

int net_http_cors_preflight(h2o_req_t *req, unsigned allowed, void *data)
{
    const net_http_cors_t *cors = data;
    char methods_buf[64];
    size_t methods_len = net_http_methods_format(allowed, methods_buf, sizeof(methods_buf));
    h2o_iovec_t methods_value = h2o_strdup(&req->pool, methods_buf, methods_len);
    h2o_set_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, methods_value.base,
                   methods_value.len, 1);
    bool is_preflight =
        h2o_find_header_by_str(&req->headers, H2O_STRLIT("access-control-request-method"), -1) >= 0;
    if (cors != NULL && is_preflight && allowed_origin(cors, req) != NULL) {
        net_http_cors_add_headers(cors, req);
        h2o_mem_pool_t *pool = &req->pool;
        h2o_headers_t *h = &req->res.headers;
        h2o_set_header_by_str(pool, h, H2O_STRLIT("access-control-allow-methods"), 0,
                              methods_value.base, methods_value.len, 1);
        h2o_set_header_by_str(pool, h, H2O_STRLIT("access-control-allow-headers"), 0,
                              H2O_STRLIT("Authorization, Content-Type, Idempotency-Key"), 1);
        h2o_set_header_by_str(pool, h, H2O_STRLIT("access-control-max-age"), 0,
                              H2O_STRLIT(H2O_TO_STR(NET_HTTP_CORS_MAX_AGE_S)), 1);
    }
    net_http_send(req, 204, NULL, NULL, 0);
    return 0;
}

/* ---- observing a request's answer ---- */

typedef struct st_hook_ostream_t hook_ostream_t;

/* A prefilter (h2o's per-request filter) that adds the observing ostream when the answer starts. */
typedef struct st_response_hook_t {
    h2o_req_prefilter_t super;
    hook_ostream_t *ostream;
    net_http_response_hook_fn fn;
    void *ctx;
    net_http_answer_t res;
    char *copy; /* the body so far, when it comes in more than one piece */
    size_t copy_len;
    h2o_iovec_t *held; /* the held final part (the array copied into the pool) */
    size_t held_count;
    h2o_send_state_t held_state;
} response_hook_t;

struct st_hook_ostream_t {
    h2o_ostream_t super;
    response_hook_t *hook;
};

/* Appends `bufs` to the hook's copy of the body while it stays within NET_HTTP_HOOK_MAX_BODY. */
static void hook_collect(response_hook_t *h, h2o_req_t *req, const h2o_iovec_t *bufs, size_t n)
{
    size_t add = 0;
    for (size_t i = 0; i != n; ++i)
        add += bufs[i].len;
    if (h->res.truncated || h->copy_len + add > NET_HTTP_HOOK_MAX_BODY) {
        h->res.truncated = true;
        return;
    }
    char *grown = h2o_mem_alloc_pool(&req->pool, h->copy_len + add + 1);
    if (h->copy_len != 0)
        memcpy(grown, h->copy, h->copy_len);
    for (size_t i = 0; i != n; ++i) {
        if (bufs[i].len == 0) /* an empty buffer's base may be NULL, which memcpy must not get */
            continue;
        memcpy(grown + h->copy_len, bufs[i].base, bufs[i].len);
        h->copy_len += bufs[i].len;
    }
    h->copy = grown;
}

static void hook_do_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                         h2o_send_state_t state)
{
    response_hook_t *h = ((hook_ostream_t *)self)->hook;
    bool single = h->copy == NULL && bufcnt <= 1 && state == H2O_SEND_STATE_FINAL;
    if (!single)
        hook_collect(h, req, bufs, bufcnt); /* O(body) copy, only for streamed answers */
    if (h2o_send_state_is_in_progress(state)) {
        h2o_ostream_send_next(self, req, bufs, bufcnt, state);
        return;
    }
    h->res.status = req->res.status;
    ssize_t at = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    h->res.content_type = at >= 0 ? req->res.headers.entries[at].value : h2o_iovec_init(NULL, 0);
    h->res.truncated |= state == H2O_SEND_STATE_ERROR;
    if (single)
        h->res.body = bufcnt == 1 ? bufs[0] : h2o_iovec_init("", 0);
    else if (!h->res.truncated)
        h->res.body = h2o_iovec_init(h->copy, h->copy_len);
    if (h->fn(req, &h->res, h->ctx)) {
        h2o_ostream_send_next(self, req, bufs, bufcnt, state);
        return;
    }
    /* held: the buffers live in the pool or in static memory (see net_http_send_owned); only
     * the array describing them is on the caller's stack */
    h->held = h2o_mem_alloc_pool(&req->pool, sizeof(*bufs) * (bufcnt != 0 ? bufcnt : 1));
    memcpy(h->held, bufs, sizeof(*bufs) * bufcnt);
    h->held_count = bufcnt;
    h->held_state = state;
}

static void hook_setup_ostream(h2o_req_prefilter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    response_hook_t *h = (response_hook_t *)self;
    h->ostream = (hook_ostream_t *)h2o_add_ostream(req, sizeof(hook_ostream_t), slot);
    h->ostream->super.do_send = hook_do_send;
    h->ostream->hook = h;
    h2o_setup_next_prefilter(self, req, &h->ostream->super.next);
}

void net_http_hook_response(h2o_req_t *req, net_http_response_hook_fn fn, void *ctx)
{
    assert(req->_generator == NULL); /* the answer has not started */
    response_hook_t *h = (response_hook_t *)h2o_add_prefilter(req, sizeof(*h));
    memset((char *)h + sizeof(h->super), 0, sizeof(*h) - sizeof(h->super));
    h->super.on_setup_ostream = hook_setup_ostream;
    h->fn = fn;
    h->ctx = ctx;
}

void net_http_response_release(h2o_req_t *req, net_http_answer_t *res)
{
    response_hook_t *h = H2O_STRUCT_FROM_MEMBER(response_hook_t, res, res);
    assert(h->held != NULL);
    h2o_iovec_t *bufs = h->held;
    h->held = NULL;
    h2o_ostream_send_next(&h->ostream->super, req, bufs, h->held_count, h->held_state);
}
