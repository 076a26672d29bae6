#include "net/json.h"
#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "net/http_util.h"
#include "net/problem.h"

/* Compact, and top-level scalars refused: every answer is an object or an array. */
#define DUMP_FLAGS JSON_COMPACT
/* Duplicated keys are refused: two layers could otherwise read two different values. "\u0000"
 * stays refused (no JSON_ALLOW_NUL): strings reach C code as NUL-terminated. */
#define LOAD_FLAGS JSON_REJECT_DUPLICATES
/* Bodies parse any value, so that "42" or "[]" are told "must be a JSON object" plainly. */
#define BODY_LOAD_FLAGS (LOAD_FLAGS | JSON_DECODE_ANY)
#define SEARCH_DEPTH_MAX 32         /* the deepest path named for an out-of-range number */
#define NET_JSON_SCRATCH_SIZE 16384 /* per thread: answers up to this size are rendered once */

void net_json_errors_init(net_json_errors_t *errs)
{
    /* only what is read: `detail` as a string and the items below `count`, each of which
     * net_json_errors_add writes whole (zeroing all ~3.9 KB was ~1 % of a cached list's userland
     * time: every list reads its query parameters into one) */
    errs->detail[0] = '\0';
    errs->count = 0;
    errs->truncated = false;
}

bool net_json_errors_any(const net_json_errors_t *errs)
{
    return errs->detail[0] != '\0' || errs->count != 0 || errs->truncated;
}

/* Copies `src` into `dst` (capacity `cap` with the NUL), cutting on a UTF-8 boundary and marking
 * a cut with "...", so that a long name never yields a string jansson would refuse. */
static void copy_utf8(char *dst, size_t cap, const char *src, size_t len)
{
    assert(cap > 4);
    if (len < cap) {
        memcpy(dst, src, len);
        dst[len] = '\0';
        return;
    }
    size_t keep = cap - 4;
    while (keep > 0 && ((unsigned char)src[keep] & 0xc0) == 0x80) /* bounded by cap */
        --keep;
    memcpy(dst, src, keep);
    memcpy(dst + keep, "...", 4);
}

/* "prefix.name" or "name" into `dst`, cut as copy_utf8 does. */
static void join_name(char *dst, size_t cap, const char *prefix, const char *name)
{
    char joined[NET_JSON_FIELD_NAME_MAX * 2 + 2];
    size_t name_len = strlen(name);
    if (prefix == NULL || prefix[0] == '\0') {
        copy_utf8(dst, cap, name, name_len);
        return;
    }
    int n = snprintf(joined, sizeof(joined), "%s.%.*s", prefix,
                     (int)(name_len > NET_JSON_FIELD_NAME_MAX ? NET_JSON_FIELD_NAME_MAX : name_len),
                     name);
    assert(n > 0);
    copy_utf8(dst, cap, joined, strnlen(joined, sizeof(joined) - 1));
}

void net_json_errors_add(net_json_errors_t *errs, const char *field, const char *fmt, ...)
{
    assert(errs->count <= NET_JSON_MAX_ERRORS);
    if (errs->count == NET_JSON_MAX_ERRORS) {
        errs->truncated = true;
        return;
    }
    net_json_error_t *e = &errs->items[errs->count++];
    copy_utf8(e->field, sizeof(e->field), field, strlen(field));
    char message[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    assert(n >= 0);
    copy_utf8(e->message, sizeof(e->message), message, strnlen(message, sizeof(message) - 1));
}

static bool lc_token_is(const char *s, size_t len, const char *lit)
{
    return h2o_lcstris(s, len, lit, strlen(lit));
}

bool net_json_content_type_ok(const char *value, size_t len)
{
    static const char media[] = "application/json";
    size_t i = 0, media_len = sizeof(media) - 1;
    if (len < media_len || !h2o_lcstris(value, media_len, media, media_len))
        return false;
    for (i = media_len; i < len && (value[i] == ' ' || value[i] == '\t'); ++i)
        ;
    if (i == len)
        return true;
    if (value[i++] != ';')
        return false;
    for (; i < len && (value[i] == ' ' || value[i] == '\t'); ++i)
        ;
    size_t end = len;
    for (; end > i && (value[end - 1] == ' ' || value[end - 1] == '\t'); --end)
        ;
    /* the one parameter allowed: charset=utf-8, the value possibly quoted */
    if (end - i < 8 || !lc_token_is(value + i, 8, "charset="))
        return false;
    const char *cs = value + i + 8;
    size_t cs_len = end - i - 8;
    if (cs_len >= 2 && cs[0] == '"' && cs[cs_len - 1] == '"') {
        ++cs;
        cs_len -= 2;
    }
    return lc_token_is(cs, cs_len, "utf-8");
}

bool net_json_is_decimal(const char *s, size_t len)
{
    if (len == 0 || len > NET_JSON_DECIMAL_MAX_LEN)
        return false;
    size_t i = 0;
    for (; i < len && isdigit((unsigned char)s[i]); ++i)
        ;
    if (i == 0 || (s[0] == '0' && i > 1)) /* digits before any '.', no leading zeros */
        return false;
    if (i == len)
        return true;
    if (s[i] != '.' || i + 1 == len)
        return false;
    for (++i; i < len && isdigit((unsigned char)s[i]); ++i)
        ;
    return i == len;
}

typedef struct st_path_level_t {
    bool object, expect_key;
    const char *key; /* raw, as in the body (escapes not undone) */
    size_t key_len, index;
} path_level_t;

/* Writes the dotted path of the levels ("constraints.days[2]") into `out`. */
static void format_path(const path_level_t *levels, int depth, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (int d = 0; d != depth && len < cap; ++d) {
        int n = levels[d].object ? snprintf(out + len, cap - len, "%s%.*s", d == 0 ? "" : ".",
                                            (int)levels[d].key_len, levels[d].key)
                                 : snprintf(out + len, cap - len, "[%zu]", levels[d].index);
        len += n > 0 ? (size_t)n : 0;
    }
}

/* The path of the value that ends at byte `pos` of `body`, which jansson read without error up
 * to there (a number it then refused as out of range: its error position is that number's end).
 * A small tokenizer that tracks only containers, keys and indexes; false past
 * SEARCH_DEPTH_MAX levels or when no number ends at `pos`. O(pos). */
static bool path_at(const char *body, size_t pos, char *out, size_t cap)
{
    path_level_t levels[SEARCH_DEPTH_MAX];
    int depth = 0;
    size_t i = 0;
    while (i < pos) { /* bounded: every branch advances i */
        char c = body[i];
        path_level_t *top = depth > 0 ? &levels[depth - 1] : NULL;
        if (c == '"') {
            size_t start = ++i;
            while (i < pos && body[i] != '"')
                i += body[i] == '\\' ? 2 : 1;
            if (top != NULL && top->object && top->expect_key)
                top->key = body + start, top->key_len = i - start;
        } else if (c == '{' || c == '[') {
            if (depth == SEARCH_DEPTH_MAX)
                return false;
            levels[depth++] = (path_level_t){.object = c == '{', .expect_key = c == '{'};
        } else if ((c == '}' || c == ']') && depth > 0) {
            --depth;
        } else if (c == ':' && top != NULL) {
            top->expect_key = false;
        } else if (c == ',' && top != NULL) {
            top->expect_key = top->object;
            top->index += !top->object;
        } else if (c == '-' || isdigit((unsigned char)c)) {
            while (i < pos && body[i] != '\0' && strchr("+-.eE0123456789", body[i]) != NULL)
                ++i;
            if (i == pos) {
                format_path(levels, depth, out, cap);
                return out[0] != '\0';
            }
            continue;
        }
        ++i;
    }
    return false;
}

/* jansson refused a number out of range (an integer beyond int64, a real beyond double): name
 * the field holding it. */
static void report_overflow(const char *body, size_t body_len, const json_error_t *error,
                            net_json_errors_t *errs)
{
    char path[NET_JSON_FIELD_NAME_MAX * 2 + 2];
    size_t pos = error->position >= 0 ? (size_t)error->position : body_len + 1;
    if (pos <= body_len && path_at(body, pos, path, sizeof(path)) &&
        net_http_utf8_valid(path, strlen(path)))
        net_json_errors_add(errs, path, "is out of range (integers must fit in 64 bits)");
    else
        snprintf(errs->detail, sizeof(errs->detail), "a number in the body is out of range");
}

/* Turns jansson's error into a 400's detail; jansson's text quotes at most a few bytes of the
 * client's own body, near the error. */
static int malformed(const char *body, size_t body_len, const json_error_t *error,
                     net_json_errors_t *errs)
{
    switch (json_error_code(error)) {
    case json_error_numeric_overflow:
        report_overflow(body, body_len, error, errs);
        break;
    case json_error_invalid_utf8:
        snprintf(errs->detail, sizeof(errs->detail), "the body is not valid UTF-8");
        break;
    case json_error_null_character:
    case json_error_null_byte_in_key:
        snprintf(errs->detail, sizeof(errs->detail), "strings in the body must not hold \\u0000");
        break;
    case json_error_duplicate_key:
        snprintf(errs->detail, sizeof(errs->detail), "the body repeats a key (%.80s)", error->text);
        break;
    default:
        snprintf(errs->detail, sizeof(errs->detail),
                 "the body is not valid JSON: %.100s at line %d, column %d", error->text,
                 error->line, error->column);
    }
    if (!net_http_utf8_valid(errs->detail, strlen(errs->detail))) /* jansson quotes the input */
        snprintf(errs->detail, sizeof(errs->detail), "the body is not valid JSON");
    return 400;
}

int net_json_parse_body(const char *content_type, size_t content_type_len, const char *body,
                        size_t body_len, size_t limit, json_t **out, net_json_errors_t *errs)
{
    assert(limit > 0);
    net_json_errors_init(errs);
    *out = NULL;
    if (content_type == NULL || !net_json_content_type_ok(content_type, content_type_len)) {
        snprintf(errs->detail, sizeof(errs->detail),
                 "the body must be JSON, sent as Content-Type: application/json");
        return 415;
    }
    if (body_len > limit) {
        net_json_too_large_detail(errs->detail, sizeof(errs->detail), limit);
        return 413;
    }
    if (body_len == 0) {
        snprintf(errs->detail, sizeof(errs->detail), "the body is empty; a JSON object is needed");
        return 400;
    }
    json_error_t error;
    json_t *root = json_loadb(body, body_len, BODY_LOAD_FLAGS, &error);
    if (root == NULL)
        return malformed(body, body_len, &error, errs);
    if (!json_is_object(root)) {
        json_decref(root);
        snprintf(errs->detail, sizeof(errs->detail), "the body must be a JSON object");
        return 400;
    }
    *out = root;
    return 0;
}

static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; ++i)
        n += ((unsigned char)s[i] & 0xc0) != 0x80; /* count lead bytes, not continuations */
    return n;
}

static const char *kind_phrase(net_json_kind_t kind)
{
    switch (kind) {
    case NET_JSON_STRING:
        return "a string";
    case NET_JSON_DECIMAL:
        return "a decimal string such as \"100.5\"";
    case NET_JSON_INTEGER:
        return "an integer";
    case NET_JSON_BOOLEAN:
        return "true or false";
    case NET_JSON_OBJECT:
        return "an object";
    case NET_JSON_ARRAY:
        return "an array";
    }
    return "?";
}

/* Checks one present value against its field; returns the message, or NULL when it holds. */
static const char *check_value(const net_json_field_t *f, const json_t *v, char *buf, size_t cap)
{
    if (json_is_null(v)) {
        if ((f->flags & NET_JSON_NULLABLE) != 0)
            return NULL;
        snprintf(buf, cap, "must be %s, not null", kind_phrase(f->kind));
        return buf;
    }
    switch (f->kind) {
    case NET_JSON_STRING:
        if (!json_is_string(v))
            return "must be a string";
        if (f->max_len != 0 &&
            utf8_chars(json_string_value(v), json_string_length(v)) > f->max_len) {
            snprintf(buf, cap, "must be at most %zu characters", f->max_len);
            return buf;
        }
        return NULL;
    case NET_JSON_DECIMAL:
        if (!json_is_string(v) || !net_json_is_decimal(json_string_value(v), json_string_length(v)))
            return "must be a decimal string such as \"100.5\"";
        return NULL;
    case NET_JSON_INTEGER:
        if (json_is_real(v))
            return "must be an integer (no fraction or exponent)";
        if (!json_is_integer(v))
            return "must be an integer";
        if (f->min < f->max && (json_integer_value(v) < f->min || json_integer_value(v) > f->max)) {
            snprintf(buf, cap, "must be between %" PRId64 " and %" PRId64, f->min, f->max);
            return buf;
        }
        return NULL;
    case NET_JSON_BOOLEAN:
        return json_is_boolean(v) ? NULL : "must be true or false";
    case NET_JSON_OBJECT:
        return json_is_object(v) ? NULL : "must be an object";
    case NET_JSON_ARRAY:
        if (!json_is_array(v))
            return "must be an array";
        if (f->max_len != 0 && json_array_size(v) > f->max_len) {
            snprintf(buf, cap, "must have at most %zu elements", f->max_len);
            return buf;
        }
        return NULL;
    }
    return "has an unknown kind";
}

static const net_json_field_t *find_field(const net_json_field_t *fields, size_t n,
                                          const char *name)
{
    for (size_t i = 0; i != n; ++i)
        if (strcmp(fields[i].name, name) == 0)
            return &fields[i];
    return NULL;
}

bool net_json_validate(const json_t *obj, const net_json_field_t *fields, size_t n,
                       const char *prefix, net_json_errors_t *errs)
{
    assert(json_is_object(obj));
    assert(n <= NET_JSON_MAX_FIELDS);
    size_t before = errs->count;
    char name[NET_JSON_FIELD_NAME_MAX + 1], buf[NET_JSON_ERROR_MESSAGE_MAX + 1];
    const char *key;
    json_t *value;
    /* unknown fields first, in the body's order (api.md: they are rejected, not ignored) */
    json_object_foreach((json_t *)obj, key, value)
    {
        if (find_field(fields, n, key) != NULL)
            continue;
        join_name(name, sizeof(name), prefix, key);
        net_json_errors_add(errs, name, "is not a known field");
        if (errs->truncated) /* a body may hold very many keys: stop at the first that is lost */
            break;
    }
    /* then the table's fields, in the table's order (at most NET_JSON_MAX_FIELDS) */
    for (size_t i = 0; i != n; ++i) {
        const json_t *v = json_object_get(obj, fields[i].name);
        const char *message =
            v == NULL ? ((fields[i].flags & NET_JSON_REQUIRED) != 0 ? "is required" : NULL)
                      : check_value(&fields[i], v, buf, sizeof(buf));
        if (message == NULL)
            continue;
        join_name(name, sizeof(name), prefix, fields[i].name);
        net_json_errors_add(errs, name, "%s", message);
    }
    return errs->count == before && !errs->truncated;
}

const char *net_json_get_string(const json_t *obj, const char *name)
{
    return json_string_value(json_object_get(obj, name)); /* NULL unless a string */
}

json_t *net_json_read(h2o_req_t *req, const net_json_field_t *fields, size_t n)
{
    ssize_t at = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    h2o_iovec_t ct = at >= 0 ? req->headers.entries[at].value : h2o_iovec_init(NULL, 0);
    net_json_errors_t errs;
    json_t *body = NULL;
    int status = net_json_parse_body(ct.base, ct.len, req->entity.base, req->entity.len,
                                     NET_JSON_BODY_LIMIT_DEFAULT, &body, &errs);
    if (status == 0 && !net_json_validate(body, fields, n, NULL, &errs)) {
        json_decref(body);
        body = NULL;
        status = 400;
        snprintf(errs.detail, sizeof(errs.detail), "some fields are invalid (see errors)");
    }
    if (status != 0)
        net_problem_send_errors(req, status, &errs);
    return body;
}

int net_json_send_as(h2o_req_t *req, int status, const char *content_type, json_t *body)
{
    static const char fallback[] = "{\"type\":\"about:blank\",\"title\":\"Internal Server Error\","
                                   "\"status\":500}";
    /* Rendering costs about as much as building the object (jansson checks every container for
     * loops), so it is done once into this thread's scratch buffer, which holds every ordinary
     * answer, and copied; only a larger answer is rendered a second time at its exact size. */
    static __thread char scratch[NET_JSON_SCRATCH_SIZE];
    size_t size = body != NULL ? json_dumpb(body, scratch, sizeof(scratch), DUMP_FLAGS) : 0;
    if (size == 0) { /* out of memory while building the answer: say so without allocating */
        json_decref(body);
        net_http_send_owned(req, 500, "application/problem+json",
                            h2o_iovec_init(fallback, sizeof(fallback) - 1));
        return 0;
    }
    char *buf = h2o_mem_alloc_pool(&req->pool, size);
    size_t written = size;
    if (size <= sizeof(scratch))
        memcpy(buf, scratch, size);
    else
        written = json_dumpb(body, buf, size, DUMP_FLAGS);
    assert(written == size);
    json_decref(body);
    net_http_send_owned(req, status, content_type, h2o_iovec_init(buf, written));
    return 0;
}

int net_json_send(h2o_req_t *req, int status, json_t *body)
{
    return net_json_send_as(req, status, "application/json", body);
}

/* ---- the bounded writer (net_json_out_t) ---- */

void net_json_out_put(net_json_out_t *o, const char *s, size_t n)
{
    if (o->full || n > o->cap - o->len) {
        o->full = true;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

void net_json_out_puts(net_json_out_t *o, const char *s)
{
    net_json_out_put(o, s, strlen(s));
}

void net_json_out_put_str(net_json_out_t *o, const char *s)
{
    size_t len = strlen(s), start = 0;
    bool ascii = true;
    for (size_t i = 0; i != len; ++i) /* bounded by len */
        ascii &= (unsigned char)s[i] < 0x80;
    if (!ascii && !net_http_utf8_valid(s, len)) {
        o->full = true;
        return;
    }
    net_json_out_put(o, "\"", 1);
    for (size_t i = 0; i != len; ++i) { /* bounded by len */
        unsigned char c = (unsigned char)s[i];
        if (c != '"' && c != '\\' && c >= 0x20)
            continue;
        net_json_out_put(o, s + start, i - start);
        start = i + 1;
        char seq[8];
        const char *esc = c == '"'    ? "\\\""
                          : c == '\\' ? "\\\\"
                          : c == '\b' ? "\\b"
                          : c == '\f' ? "\\f"
                          : c == '\n' ? "\\n"
                          : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t"
                                      : NULL;
        if (esc == NULL) {
            snprintf(seq, sizeof(seq), "\\u%04X", (unsigned)c);
            esc = seq;
        }
        net_json_out_puts(o, esc);
    }
    net_json_out_put(o, s + start, len - start);
    net_json_out_put(o, "\"", 1);
}

void net_json_too_large_detail(char *out, size_t cap, size_t limit)
{
    snprintf(out, cap, "the body is larger than %zu bytes", limit);
}
