#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "chain/rfc3339.h"
#include "chain/siwe.h"

#define CHAIN__SIWE_HEADER " wants you to sign in with your Ethereum account:"
#define CHAIN__SIWE_NONCE_MIN 8
/* longest IPv6 text inet_pton takes: 8 groups of 4 digits and 7 colons, or the IPv4 tail */
#define CHAIN__IPV6_TEXT_MAX 45

/* ---- RFC 3986 character classes and productions ---- */

/* what chain__uri_chars allows besides `extra`: */
#define CHAIN__URI_UNRESERVED 0x1 /* ALPHA DIGIT "-" "." "_" "~" */
#define CHAIN__URI_SUB_DELIMS 0x2 /* "!" "$" "&" "'" "(" ")" "*" "+" "," ";" "=" */
#define CHAIN__URI_PCT 0x4        /* "%" HEXDIG HEXDIG */
#define CHAIN__URI_PCHAR_SET (CHAIN__URI_UNRESERVED | CHAIN__URI_SUB_DELIMS | CHAIN__URI_PCT)

static bool chain__is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool chain__is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool chain__is_hexdig(char c)
{
    return chain__is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool chain__is_unreserved(char c)
{
    return chain__is_alpha(c) || chain__is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static bool chain__is_sub_delim(char c)
{
    return c != '\0' && strchr("!$&'()*+,;=", c) != NULL;
}

/* true when all of s[0, len) is made of the classes in `set` and the characters in `extra` */
static bool chain__uri_chars(const char *s, size_t len, unsigned set, const char *extra)
{
    for (size_t i = 0; i < len; ++i) {
        char c = s[i];
        if ((set & CHAIN__URI_UNRESERVED) != 0 && chain__is_unreserved(c))
            continue;
        if ((set & CHAIN__URI_SUB_DELIMS) != 0 && chain__is_sub_delim(c))
            continue;
        if (c != '\0' && strchr(extra, c) != NULL)
            continue;
        if ((set & CHAIN__URI_PCT) != 0 && c == '%' && len - i >= 3 && chain__is_hexdig(s[i + 1]) &&
            chain__is_hexdig(s[i + 2])) {
            i += 2;
            continue;
        }
        return false;
    }
    return true;
}

/* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
static bool chain__uri_scheme(const char *s, size_t len)
{
    if (len == 0 || !chain__is_alpha(s[0]))
        return false;
    for (size_t i = 1; i != len; ++i) {
        if (!chain__is_alpha(s[i]) && !chain__is_digit(s[i]) && s[i] != '+' && s[i] != '-' &&
            s[i] != '.')
            return false;
    }
    return true;
}

/* the inside of IP-literal's brackets: IPv6address / IPvFuture */
static bool chain__uri_ip_literal(const char *s, size_t len)
{
    if (len >= 1 && (s[0] == 'v' || s[0] == 'V')) {
        /* IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ) */
        size_t i = 1;
        while (i < len && chain__is_hexdig(s[i]))
            ++i;
        if (i == 1 || i >= len || s[i] != '.' || i + 1 == len)
            return false;
        return chain__uri_chars(s + i + 1, len - i - 1,
                                CHAIN__URI_UNRESERVED | CHAIN__URI_SUB_DELIMS, ":");
    }
    /* inet_pton's IPv6 text form is RFC 3986's IPv6address (RFC 4291 section 2.2), no zone */
    char buf[CHAIN__IPV6_TEXT_MAX + 1];
    if (len == 0 || len > CHAIN__IPV6_TEXT_MAX)
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    struct in6_addr addr;
    return inet_pton(AF_INET6, buf, &addr) == 1;
}

/* authority = [ userinfo "@" ] host [ ":" port ] */
static bool chain__uri_authority(const char *s, size_t len)
{
    const char *at = memchr(s, '@', len);
    if (at != NULL) {
        size_t ui_len = (size_t)(at - s);
        /* userinfo = *( unreserved / pct-encoded / sub-delims / ":" ); it has no "@" */
        if (!chain__uri_chars(s, ui_len, CHAIN__URI_PCHAR_SET, ":"))
            return false;
        s += ui_len + 1;
        len -= ui_len + 1;
    }
    size_t host_len;
    if (len != 0 && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL || !chain__uri_ip_literal(s + 1, (size_t)(close - s) - 1))
            return false;
        host_len = (size_t)(close - s) + 1;
    } else {
        /* reg-name = *( unreserved / pct-encoded / sub-delims ); IPv4address is a reg-name */
        const char *colon = memchr(s, ':', len);
        host_len = colon != NULL ? (size_t)(colon - s) : len;
        if (!chain__uri_chars(s, host_len, CHAIN__URI_PCHAR_SET, ""))
            return false;
    }
    if (host_len == len)
        return true;
    /* port = *DIGIT */
    if (s[host_len] != ':')
        return false;
    for (size_t i = host_len + 1; i != len; ++i) {
        if (!chain__is_digit(s[i]))
            return false;
    }
    return true;
}

/* URI = scheme ":" hier-part [ "?" query ] [ "#" fragment ] */
static bool chain__uri(const char *s, size_t len)
{
    const char *colon = memchr(s, ':', len);
    if (colon == NULL || !chain__uri_scheme(s, (size_t)(colon - s)))
        return false;
    const char *p = colon + 1, *end = s + len;
    /* fragment and query may hold "?" and "/" but never "#", and hier-part never "?" */
    const char *hash = memchr(p, '#', (size_t)(end - p));
    const char *hier_end = hash != NULL ? hash : end;
    if (hash != NULL &&
        !chain__uri_chars(hash + 1, (size_t)(end - hash - 1), CHAIN__URI_PCHAR_SET, ":@/?"))
        return false;
    const char *query = memchr(p, '?', (size_t)(hier_end - p));
    if (query != NULL) {
        if (!chain__uri_chars(query + 1, (size_t)(hier_end - query - 1), CHAIN__URI_PCHAR_SET,
                              ":@/?"))
            return false;
        hier_end = query;
    }
    /* hier-part = "//" authority path-abempty / path-absolute / path-rootless / path-empty */
    if (hier_end - p >= 2 && p[0] == '/' && p[1] == '/') {
        p += 2;
        const char *slash = memchr(p, '/', (size_t)(hier_end - p));
        const char *auth_end = slash != NULL ? slash : hier_end;
        if (!chain__uri_authority(p, (size_t)(auth_end - p)))
            return false;
        p = auth_end;
    }
    /* what is left is segments of pchar separated by "/": path-abempty after an authority;
     * without one, path-absolute, -rootless or -empty, none of which starts with "//" (that
     * case went to the authority above) */
    return chain__uri_chars(p, (size_t)(hier_end - p), CHAIN__URI_PCHAR_SET, ":@/");
}

/* ---- the message, line by line ---- */

typedef struct st_chain__siwe_lines_t {
    const char *pos;
    const char *end;
    bool more; /* another line follows (the message so far ended with LF, or nothing read) */
} chain__siwe_lines_t;

/* takes the next line (without its LF); false when there is none */
static bool chain__siwe_line(chain__siwe_lines_t *c, chain_span_t *line)
{
    if (!c->more)
        return false;
    /* no memchr on an empty rest: its pointer may be NULL (an empty message) */
    const char *lf = c->pos == c->end ? NULL : memchr(c->pos, '\n', (size_t)(c->end - c->pos));
    const char *stop = lf != NULL ? lf : c->end;
    line->ptr = c->pos;
    line->len = (size_t)(stop - c->pos);
    c->more = lf != NULL;
    c->pos = lf != NULL ? lf + 1 : c->end;
    return true;
}

/* takes the next line if it starts with `prefix`, the rest of it in `value` */
static bool chain__siwe_field(chain__siwe_lines_t *c, const char *prefix, chain_span_t *value)
{
    chain__siwe_lines_t save = *c;
    chain_span_t line;
    size_t n = strlen(prefix);
    if (chain__siwe_line(c, &line) && line.len >= n && memcmp(line.ptr, prefix, n) == 0) {
        value->ptr = line.ptr + n;
        value->len = line.len - n;
        return true;
    }
    *c = save;
    return false;
}

static int chain__siwe_fail(chain_siwe_t *m, const char *field, int err)
{
    m->err_field = field;
    return err;
}

/* "[ scheme "://" ] domain wants you to sign in with your Ethereum account:" */
static int chain__siwe_header(chain_siwe_t *m, chain__siwe_lines_t *c)
{
    chain_span_t line;
    size_t hdr = sizeof(CHAIN__SIWE_HEADER) - 1;
    if (!chain__siwe_line(c, &line) || line.len < hdr ||
        memcmp(line.ptr + line.len - hdr, CHAIN__SIWE_HEADER, hdr) != 0)
        return chain__siwe_fail(m, "message", CHAIN_ERR_SYNTAX);
    const char *s = line.ptr, *end = line.ptr + line.len - hdr;
    /* an authority has no "/", so "://" can only end a scheme */
    const char *sep = memmem(s, (size_t)(end - s), "://", 3);
    if (sep != NULL) {
        if (!chain__uri_scheme(s, (size_t)(sep - s)))
            return chain__siwe_fail(m, "scheme", CHAIN_ERR_SYNTAX);
        m->has_scheme = true;
        m->scheme = (chain_span_t){s, (size_t)(sep - s)};
        s = sep + 3;
    }
    m->domain = (chain_span_t){s, (size_t)(end - s)};
    if (m->domain.len == 0 || !chain__uri_authority(m->domain.ptr, m->domain.len))
        return chain__siwe_fail(m, "domain", CHAIN_ERR_SYNTAX);
    return CHAIN_OK;
}

/* address LF LF [ statement LF ] LF */
static int chain__siwe_address_statement(chain_siwe_t *m, chain__siwe_lines_t *c)
{
    chain_span_t line;
    if (!chain__siwe_line(c, &line))
        return chain__siwe_fail(m, "address", CHAIN_ERR_SYNTAX);
    int ret = chain_addr_parse(&m->address, line.ptr, line.len);
    char canonical[CHAIN_ADDR_STR_SIZE];
    if (ret == CHAIN_OK) {
        /* EIP-55 form required: single-case input carries no checksum, so compare */
        chain_addr_format(&m->address, canonical);
        if (memcmp(canonical, line.ptr, line.len) != 0)
            ret = CHAIN_ERR_CHECKSUM;
    }
    if (ret != CHAIN_OK)
        return chain__siwe_fail(m, "address", ret);
    if (!chain__siwe_line(c, &line) || line.len != 0 || !chain__siwe_line(c, &line))
        return chain__siwe_fail(m, "message", CHAIN_ERR_SYNTAX);
    if (line.len == 0)
        return CHAIN_OK;
    /* statement = *( reserved / unreserved / " " ): no "%", no controls, ASCII only */
    if (!chain__uri_chars(line.ptr, line.len, CHAIN__URI_UNRESERVED | CHAIN__URI_SUB_DELIMS,
                          ":/?#[]@ "))
        return chain__siwe_fail(m, "statement", CHAIN_ERR_SYNTAX);
    m->has_statement = true;
    m->statement = line;
    if (!chain__siwe_line(c, &line) || line.len != 0)
        return chain__siwe_fail(m, "message", CHAIN_ERR_SYNTAX);
    return CHAIN_OK;
}

static int chain__siwe_chain_id(chain_siwe_t *m, chain_span_t v)
{
    if (v.len == 0)
        return chain__siwe_fail(m, "chainId", CHAIN_ERR_SYNTAX);
    uint64_t id = 0;
    for (size_t i = 0; i != v.len; ++i) {
        if (!chain__is_digit(v.ptr[i]))
            return chain__siwe_fail(m, "chainId", CHAIN_ERR_SYNTAX);
        unsigned d = (unsigned)(v.ptr[i] - '0');
        if (id > (UINT64_MAX - d) / 10)
            return chain__siwe_fail(m, "chainId", CHAIN_ERR_OVERFLOW);
        id = id * 10 + d;
    }
    m->chain_id = id;
    return CHAIN_OK;
}

/* parses a date-time field; `round_up` when a fraction should count as the next second */
static int chain__siwe_time(chain_siwe_t *m, const char *field, chain_span_t v, bool round_up,
                            int64_t *out)
{
    uint32_t ns;
    if (chain_rfc3339_parse(v.ptr, v.len, out, &ns) != CHAIN_OK)
        return chain__siwe_fail(m, field, CHAIN_ERR_SYNTAX);
    if (round_up && ns != 0)
        ++*out;
    return CHAIN_OK;
}

/* URI, Version, Chain ID, Nonce and Issued At, all required and in this order */
static int chain__siwe_required(chain_siwe_t *m, chain__siwe_lines_t *c)
{
    chain_span_t v;
    if (!chain__siwe_field(c, "URI: ", &v) || !chain__uri(v.ptr, v.len))
        return chain__siwe_fail(m, "uri", CHAIN_ERR_SYNTAX);
    m->uri = v;
    if (!chain__siwe_field(c, "Version: ", &v) || v.len != 1 || v.ptr[0] != '1')
        return chain__siwe_fail(m, "version", CHAIN_ERR_SYNTAX);
    if (!chain__siwe_field(c, "Chain ID: ", &v))
        return chain__siwe_fail(m, "chainId", CHAIN_ERR_SYNTAX);
    int ret = chain__siwe_chain_id(m, v);
    if (ret != CHAIN_OK)
        return ret;
    if (!chain__siwe_field(c, "Nonce: ", &v) || v.len < CHAIN__SIWE_NONCE_MIN)
        return chain__siwe_fail(m, "nonce", CHAIN_ERR_SYNTAX);
    for (size_t i = 0; i != v.len; ++i) {
        if (!chain__is_alpha(v.ptr[i]) && !chain__is_digit(v.ptr[i]))
            return chain__siwe_fail(m, "nonce", CHAIN_ERR_SYNTAX);
    }
    m->nonce = v;
    if (!chain__siwe_field(c, "Issued At: ", &v))
        return chain__siwe_fail(m, "issuedAt", CHAIN_ERR_SYNTAX);
    return chain__siwe_time(m, "issuedAt", v, false, &m->issued_at);
}

/* "Resources:" *( LF "- " URI ), through the end of the message */
static int chain__siwe_resources(chain_siwe_t *m, chain__siwe_lines_t *c)
{
    m->has_resources = true;
    m->resources = (chain_span_t){c->pos, (size_t)(c->end - c->pos)};
    chain_span_t v;
    /* bounded: each round consumes a line of the bounded message */
    while (chain__siwe_field(c, "- ", &v)) {
        if (!chain__uri(v.ptr, v.len))
            return chain__siwe_fail(m, "resources", CHAIN_ERR_SYNTAX);
        ++m->resource_count;
    }
    return CHAIN_OK;
}

static int chain__siwe_optional(chain_siwe_t *m, chain__siwe_lines_t *c)
{
    chain_span_t v;
    int ret;
    if (chain__siwe_field(c, "Expiration Time: ", &v)) {
        m->has_expiration_time = true;
        if ((ret = chain__siwe_time(m, "expirationTime", v, false, &m->expiration_time)) !=
            CHAIN_OK)
            return ret;
    }
    if (chain__siwe_field(c, "Not Before: ", &v)) {
        m->has_not_before = true;
        if ((ret = chain__siwe_time(m, "notBefore", v, true, &m->not_before)) != CHAIN_OK)
            return ret;
    }
    if (chain__siwe_field(c, "Request ID: ", &v)) {
        /* request-id = *pchar */
        if (!chain__uri_chars(v.ptr, v.len, CHAIN__URI_PCHAR_SET, ":@"))
            return chain__siwe_fail(m, "requestId", CHAIN_ERR_SYNTAX);
        m->has_request_id = true;
        m->request_id = v;
    }
    chain__siwe_lines_t save = *c;
    chain_span_t line;
    if (chain__siwe_line(c, &line) && line.len == 10 && memcmp(line.ptr, "Resources:", 10) == 0)
        return chain__siwe_resources(m, c);
    *c = save;
    return CHAIN_OK;
}

int chain_siwe_parse(chain_siwe_t *m, const char *msg, size_t len)
{
    CHAIN_ASSERT(m != NULL);
    CHAIN_ASSERT(msg != NULL || len == 0);
    memset(m, 0, sizeof(*m));
    if (len > CHAIN_SIWE_MAX_LEN)
        return chain__siwe_fail(m, "message", CHAIN_ERR_LENGTH);
    chain__siwe_lines_t c = {msg, msg + len, true};
    int ret;
    if ((ret = chain__siwe_header(m, &c)) != CHAIN_OK ||
        (ret = chain__siwe_address_statement(m, &c)) != CHAIN_OK ||
        (ret = chain__siwe_required(m, &c)) != CHAIN_OK ||
        (ret = chain__siwe_optional(m, &c)) != CHAIN_OK)
        return ret;
    /* anything left is a line no rule produced (including a trailing LF) */
    if (c.more)
        return chain__siwe_fail(m, "message", CHAIN_ERR_SYNTAX);
    return CHAIN_OK;
}

bool chain_siwe_next_resource(const chain_siwe_t *m, size_t *offset, chain_span_t *res)
{
    CHAIN_ASSERT(m != NULL && offset != NULL && res != NULL);
    CHAIN_ASSERT(*offset <= m->resources.len);
    const char *p = m->resources.ptr + *offset, *end = m->resources.ptr + m->resources.len;
    /* the block is "- uri" lines joined by LF, as the parser checked */
    if (p == end)
        return false;
    CHAIN_ASSERT(end - p >= 2 && p[0] == '-' && p[1] == ' ');
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    const char *stop = lf != NULL ? lf : end;
    *res = (chain_span_t){p + 2, (size_t)(stop - p - 2)};
    *offset = (size_t)((lf != NULL ? lf + 1 : end) - m->resources.ptr);
    return true;
}

static bool chain__ascii_case_eq(const char *a, const char *b, size_t len)
{
    for (size_t i = 0; i != len; ++i) {
        char x = a[i], y = b[i];
        x = (x >= 'A' && x <= 'Z') ? (char)(x - 'A' + 'a') : x;
        y = (y >= 'A' && y <= 'Z') ? (char)(y - 'A' + 'a') : y;
        if (x != y)
            return false;
    }
    return true;
}

int chain_siwe_validate(const chain_siwe_t *m, const char *domain, size_t domain_len,
                        uint64_t chain_id, int64_t now_s)
{
    CHAIN_ASSERT(m != NULL && domain != NULL);
    if (m->domain.len != domain_len || !chain__ascii_case_eq(m->domain.ptr, domain, domain_len))
        return CHAIN_ERR_MISMATCH;
    if (m->chain_id != chain_id)
        return CHAIN_ERR_MISMATCH;
    /* a wallet's clock may run ahead of ours, but not by more than the skew */
    if (now_s < m->issued_at - CHAIN_SIWE_SKEW_S)
        return CHAIN_ERR_NOT_YET;
    if (m->has_not_before && now_s < m->not_before)
        return CHAIN_ERR_NOT_YET;
    if (m->has_expiration_time && now_s >= m->expiration_time)
        return CHAIN_ERR_EXPIRED;
    return CHAIN_OK;
}

/* appends printf output to out[*len..cap); false when it did not fit */
__attribute__((format(printf, 4, 5))) static bool
chain__siwe_append(char *out, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *len)
        return false;
    *len += (size_t)n;
    return true;
}

int chain_siwe_compose(char *out, size_t cap, size_t *len, const chain_siwe_params_t *p)
{
    CHAIN_ASSERT(out != NULL && len != NULL && p != NULL);
    CHAIN_ASSERT(p->domain != NULL && p->address != NULL && p->uri != NULL && p->nonce != NULL);
    char addr[CHAIN_ADDR_STR_SIZE], iat[CHAIN_RFC3339_SIZE], exp[CHAIN_RFC3339_SIZE];
    chain_addr_format(p->address, addr);
    if (chain_rfc3339_format(p->issued_at, iat) != CHAIN_OK ||
        (p->has_expiration_time && chain_rfc3339_format(p->expiration_time, exp) != CHAIN_OK))
        return CHAIN_ERR_OVERFLOW;
    bool has_statement = p->statement != NULL && p->statement[0] != '\0';
    size_t n = 0;
    bool ok =
        cap != 0 &&
        chain__siwe_append(out, cap, &n, "%s" CHAIN__SIWE_HEADER "\n%s\n\n%s%s\n", p->domain, addr,
                           has_statement ? p->statement : "", has_statement ? "\n" : "") &&
        chain__siwe_append(out, cap, &n,
                           "URI: %s\nVersion: 1\nChain ID: %llu\nNonce: %s\nIssued At: %s", p->uri,
                           (unsigned long long)p->chain_id, p->nonce, iat) &&
        (!p->has_expiration_time || chain__siwe_append(out, cap, &n, "\nExpiration Time: %s", exp));
    if (!ok)
        return CHAIN_ERR_SHORT_BUFFER;
    /* the composer's inputs come from configuration and the API: prove the result parses */
    chain_siwe_t check;
    int ret = chain_siwe_parse(&check, out, n);
    if (ret != CHAIN_OK)
        return ret;
    *len = n;
    return CHAIN_OK;
}
