#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include "chain/eip191.h"
#include "chain/siwe.h"
#include "test_chain_fixtures.h"

/* EIP-4361's example messages: implicit scheme; implicit scheme with a port; explicit scheme */
#define EIP_BODY                                                                                   \
    " wants you to sign in with your Ethereum account:\n"                                          \
    "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2\n"                                                 \
    "\n"                                                                                           \
    "I accept the ExampleOrg Terms of Service: https://example.com/tos\n"                          \
    "\n"                                                                                           \
    "URI: https://example.com/login\n"                                                             \
    "Version: 1\n"                                                                                 \
    "Chain ID: 1\n"                                                                                \
    "Nonce: 32891756\n"                                                                            \
    "Issued At: 2021-09-30T16:25:24Z\n"                                                            \
    "Resources:\n"                                                                                 \
    "- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/\n"                      \
    "- https://example.com/my-web2-claim.json"
static const char eip_example[] = "example.com" EIP_BODY;
static const char eip_example_port[] = "example.com:3388" EIP_BODY;
static const char eip_example_scheme[] = "https://example.com" EIP_BODY;
#define EIP_ISSUED_AT 1633019124

static int parse(chain_siwe_t *m, const char *s)
{
    return chain_siwe_parse(m, s, strlen(s));
}

static void assert_span(chain_span_t span, const char *want)
{
    cr_assert_eq(span.len, strlen(want), "\"%.*s\" vs \"%s\"", (int)span.len, span.ptr, want);
    cr_assert(memcmp(span.ptr, want, span.len) == 0, "\"%.*s\" vs \"%s\"", (int)span.len, span.ptr,
              want);
}

static void assert_eip_fields(const chain_siwe_t *m)
{
    chain_addr_t want = fx_addr_str("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2");
    cr_assert(chain_addr_eq(&m->address, &want));
    cr_assert(m->has_statement);
    assert_span(m->statement, "I accept the ExampleOrg Terms of Service: https://example.com/tos");
    assert_span(m->uri, "https://example.com/login");
    cr_assert_eq(m->chain_id, 1);
    assert_span(m->nonce, "32891756");
    cr_assert_eq(m->issued_at, EIP_ISSUED_AT);
    cr_assert(!m->has_expiration_time && !m->has_not_before && !m->has_request_id);
    cr_assert(m->has_resources);
    cr_assert_eq(m->resource_count, 2);
    size_t off = 0;
    chain_span_t r;
    cr_assert(chain_siwe_next_resource(m, &off, &r));
    assert_span(r, "ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/");
    cr_assert(chain_siwe_next_resource(m, &off, &r));
    assert_span(r, "https://example.com/my-web2-claim.json");
    cr_assert(!chain_siwe_next_resource(m, &off, &r));
}

Test(chain_siwe, eip_examples)
{
    chain_siwe_t m;
    cr_assert_eq(parse(&m, eip_example), CHAIN_OK, "%s", m.err_field);
    cr_assert(!m.has_scheme);
    assert_span(m.domain, "example.com");
    assert_eip_fields(&m);

    cr_assert_eq(parse(&m, eip_example_port), CHAIN_OK, "%s", m.err_field);
    cr_assert(!m.has_scheme);
    assert_span(m.domain, "example.com:3388");
    assert_eip_fields(&m);

    cr_assert_eq(parse(&m, eip_example_scheme), CHAIN_OK, "%s", m.err_field);
    cr_assert(m.has_scheme);
    assert_span(m.scheme, "https");
    assert_span(m.domain, "example.com");
    assert_eip_fields(&m);
}

/* the smallest message, and the largest set of optional fields */
Test(chain_siwe, optional_fields)
{
    const char *min = "localhost:8080 wants you to sign in with your Ethereum account:\n"
                      "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\n\n\n"
                      "URI: http://localhost:8080\nVersion: 1\nChain ID: 31337\n"
                      "Nonce: abcdefgh\nIssued At: 2026-11-21T09:00:00Z";
    chain_siwe_t m;
    cr_assert_eq(parse(&m, min), CHAIN_OK, "%s", m.err_field);
    cr_assert(!m.has_statement && !m.has_resources && !m.has_request_id);
    cr_assert_eq(m.chain_id, 31337);

    const char *full = "user:pw@[::1]:443 wants you to sign in with your Ethereum account:\n"
                       "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\n\n"
                       "Statement with all the reserved: ! # $ & ' ( ) * + , / : ; = ? @ [ ]\n\n"
                       "URI: urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66\nVersion: 1\n"
                       "Chain ID: 18446744073709551615\nNonce: 0123456789ABCDEFabcdef\n"
                       "Issued At: 2026-11-21T10:00:00.999+01:00\n"
                       "Expiration Time: 2026-11-21T09:10:00.250Z\n"
                       "Not Before: 2026-11-21T08:59:00.001Z\n"
                       "Request ID: \n"
                       "Resources:";
    cr_assert_eq(parse(&m, full), CHAIN_OK, "%s", m.err_field);
    assert_span(m.domain, "user:pw@[::1]:443");
    cr_assert_eq(m.chain_id, UINT64_MAX);
    cr_assert_eq(m.issued_at, 1795251600, "fractions round Issued At down");
    cr_assert(m.has_expiration_time && m.expiration_time == 1795251600 + 600, "and expiry down");
    cr_assert(m.has_not_before && m.not_before == 1795251600 - 59, "and Not Before up");
    cr_assert(m.has_request_id);
    cr_assert_eq(m.request_id.len, 0);
    cr_assert(m.has_resources);
    cr_assert_eq(m.resource_count, 0);
}

/* parses the EIP's first example with `from` replaced by `to`, expecting `err` on `field` */
static void assert_refused(const char *from, const char *to, int err, const char *field)
{
    char msg[2048];
    const char *at = strstr(eip_example, from);
    cr_assert_not_null(at, "\"%s\" is not in the example", from);
    size_t head = (size_t)(at - eip_example);
    snprintf(msg, sizeof(msg), "%.*s%s%s", (int)head, eip_example, to, at + strlen(from));
    chain_siwe_t m;
    int ret = parse(&m, msg);
    cr_assert_eq(ret, err, "\"%s\" -> \"%s\": %d (%s)", from, to, ret, m.err_field);
    cr_assert_str_eq(m.err_field, field, "\"%s\" -> \"%s\"", from, to);
}

#define ADDR "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"

/* each case replaces one piece of the EIP's first example: what, by what, the error, the field
 * err_field names */
static const struct {
    const char *from, *to;
    int err;
    const char *field;
} refused[] = {
    /* layout */
    {"example.com wants", "example.com  wants", CHAIN_ERR_SYNTAX, "domain"},
    {"sign in with", "sign into", CHAIN_ERR_SYNTAX, "message"},
    {"account:\n", "account\n", CHAIN_ERR_SYNTAX, "message"},
    {"Cc2\n\nI accept", "Cc2\nI accept", CHAIN_ERR_SYNTAX, "message"},
    {"tos\n\nURI", "tos\nURI", CHAIN_ERR_SYNTAX, "message"},
    {"tos\n\nURI", "tos\n\n\nURI", CHAIN_ERR_SYNTAX, "uri"},
    {"\n", "\r\n", CHAIN_ERR_SYNTAX, "message"},
    {"json", "json\n", CHAIN_ERR_SYNTAX, "message"},
    {"Version: 1\nChain ID: 1\n", "Chain ID: 1\nVersion: 1\n", CHAIN_ERR_SYNTAX, "version"},
    {"Issued At: 2021-09-30T16:25:24Z\n", "", CHAIN_ERR_SYNTAX, "issuedAt"},
    {"Resources:",
     "Not Before: 2021-09-30T16:25:24Z\n"
     "Expiration Time: 2021-09-30T16:25:24Z\nResources:",
     CHAIN_ERR_SYNTAX, "message"},
    {"Resources:", "Foo: bar\nResources:", CHAIN_ERR_SYNTAX, "message"},
    {"URI:", "Uri:", CHAIN_ERR_SYNTAX, "uri"},
    {"URI: ", "URI:", CHAIN_ERR_SYNTAX, "uri"},
    /* domain and scheme */
    {"example.com wants", " wants", CHAIN_ERR_SYNTAX, "domain"},
    {"example.com wants", "example.com/login wants", CHAIN_ERR_SYNTAX, "domain"},
    {"example.com wants", "exa mple.com wants", CHAIN_ERR_SYNTAX, "domain"},
    {"example.com wants", "example.com:80a wants", CHAIN_ERR_SYNTAX, "domain"},
    {"example.com wants", "[::1 wants", CHAIN_ERR_SYNTAX, "domain"},
    {"example.com wants", "[::g] wants", CHAIN_ERR_SYNTAX, "domain"},
    {"example.com wants", "a@b@c wants", CHAIN_ERR_SYNTAX, "domain"},
    {"example.com wants", "1https://example.com wants", CHAIN_ERR_SYNTAX, "scheme"},
    {"example.com wants", "://example.com wants", CHAIN_ERR_SYNTAX, "scheme"},
    /* address: EIP-55 form required */
    {ADDR, "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2", CHAIN_ERR_CHECKSUM, "address"},
    {ADDR, "0xC02AAA39B223FE8D0A0E5C4F27EAD9083C756CC2", CHAIN_ERR_CHECKSUM, "address"},
    {ADDR, "0xc02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", CHAIN_ERR_CHECKSUM, "address"},
    {ADDR, "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc", CHAIN_ERR_LENGTH, "address"},
    {ADDR, "C02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2aa", CHAIN_ERR_SYNTAX, "address"},
    /* statement: reserved, unreserved and spaces only */
    {"I accept", "100% I accept", CHAIN_ERR_SYNTAX, "statement"},
    {"I accept", "I \"accept\"", CHAIN_ERR_SYNTAX, "statement"},
    {"I accept", "I\taccept", CHAIN_ERR_SYNTAX, "statement"},
    {"I accept", "I \xc3\xa9 accept", CHAIN_ERR_SYNTAX, "statement"}, /* non-ASCII */
    /* URI */
    {"https://example.com/login", "example.com/login", CHAIN_ERR_SYNTAX, "uri"},
    {"https://example.com/login", "https://exa mple.com", CHAIN_ERR_SYNTAX, "uri"},
    {"https://example.com/login", "https://example.com/%zz", CHAIN_ERR_SYNTAX, "uri"},
    {"https://example.com/login", "https://example.com/a b", CHAIN_ERR_SYNTAX, "uri"},
    {"https://example.com/login", "https://example.com:x/", CHAIN_ERR_SYNTAX, "uri"},
    {"https://example.com/login", "", CHAIN_ERR_SYNTAX, "uri"},
    {"https://example.com/login", "https://[::1/", CHAIN_ERR_SYNTAX, "uri"},
    /* version, chain id, nonce */
    {"Version: 1", "Version: 2", CHAIN_ERR_SYNTAX, "version"},
    {"Version: 1", "Version: 1.0", CHAIN_ERR_SYNTAX, "version"},
    {"Chain ID: 1", "Chain ID: ", CHAIN_ERR_SYNTAX, "chainId"},
    {"Chain ID: 1", "Chain ID: 0x1", CHAIN_ERR_SYNTAX, "chainId"},
    {"Chain ID: 1", "Chain ID: -1", CHAIN_ERR_SYNTAX, "chainId"},
    {"Chain ID: 1", "Chain ID: 18446744073709551616", CHAIN_ERR_OVERFLOW, "chainId"},
    {"32891756", "3289175", CHAIN_ERR_SYNTAX, "nonce"},
    {"32891756", "3289-1756", CHAIN_ERR_SYNTAX, "nonce"},
    {"32891756", "32891756 ", CHAIN_ERR_SYNTAX, "nonce"},
    /* times */
    {"2021-09-30T16:25:24Z", "2021-09-30 16:25:24Z", CHAIN_ERR_SYNTAX, "issuedAt"},
    {"2021-09-30T16:25:24Z", "2021-02-30T16:25:24Z", CHAIN_ERR_SYNTAX, "issuedAt"},
    {"2021-09-30T16:25:24Z", "1633019124", CHAIN_ERR_SYNTAX, "issuedAt"},
    {"Resources:", "Expiration Time: tomorrow\nResources:", CHAIN_ERR_SYNTAX, "expirationTime"},
    {"Resources:", "Not Before: 2021-09-30T16:25:24\nResources:", CHAIN_ERR_SYNTAX, "notBefore"},
    /* request id and resources */
    {"Resources:", "Request ID: a b\nResources:", CHAIN_ERR_SYNTAX, "requestId"},
    {"- https://example.com/my-web2-claim.json", "-https://example.com/", CHAIN_ERR_SYNTAX,
     "message"},
    {"- https://example.com/my-web2-claim.json", "- not a uri", CHAIN_ERR_SYNTAX, "resources"},
};

Test(chain_siwe, invalid_messages)
{
    for (size_t i = 0; i != sizeof(refused) / sizeof(refused[0]); ++i)
        assert_refused(refused[i].from, refused[i].to, refused[i].err, refused[i].field);
}

Test(chain_siwe, lengths)
{
    chain_siwe_t m;
    cr_assert_eq(chain_siwe_parse(&m, "", 0), CHAIN_ERR_SYNTAX);
    cr_assert_eq(chain_siwe_parse(&m, NULL, 0), CHAIN_ERR_SYNTAX);
    /* every prefix of the message up to the end of Issued At is refused (each in a buffer of
     * its own size, so that ASan sees a read past it); later ones may be valid messages */
    size_t valid_from = (size_t)(strstr(eip_example, "\nResources:") - eip_example);
    for (size_t n = 0; n != strlen(eip_example); ++n) {
        char *copy = malloc(n + 1);
        cr_assert_not_null(copy);
        memcpy(copy, eip_example, n);
        int ret = chain_siwe_parse(&m, copy, n);
        free(copy);
        if (n < valid_from)
            cr_assert_neq(ret, CHAIN_OK, "a prefix of %zu bytes parsed", n);
        else if (n == valid_from)
            cr_assert_eq(ret, CHAIN_OK, "the message without its resources");
    }
    char *big = malloc(CHAIN_SIWE_MAX_LEN + 2);
    memset(big, 'a', CHAIN_SIWE_MAX_LEN + 1);
    cr_assert_eq(chain_siwe_parse(&m, big, CHAIN_SIWE_MAX_LEN + 1), CHAIN_ERR_LENGTH);
    free(big);
}

Test(chain_siwe, validate)
{
    chain_siwe_t m;
    const char *msg = "flowpay.example wants you to sign in with your Ethereum account:\n"
                      "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\n\n\n"
                      "URI: https://flowpay.example\nVersion: 1\nChain ID: 25\n"
                      "Nonce: abcdefgh\nIssued At: 2026-11-21T09:00:00Z\n"
                      "Expiration Time: 2026-11-21T09:10:00Z\nNot Before: 2026-11-21T08:59:00Z";
    const int64_t iat = 1795251600, exp = iat + 600, nbf = iat - 60;
    cr_assert_eq(parse(&m, msg), CHAIN_OK);
    const char *dom = "flowpay.example";
    size_t dl = strlen(dom);
    cr_assert_eq(chain_siwe_validate(&m, dom, dl, 25, iat), CHAIN_OK);
    cr_assert_eq(chain_siwe_validate(&m, "FlowPay.Example", dl, 25, iat), CHAIN_OK);
    cr_assert_eq(chain_siwe_validate(&m, "flowpay.exampl", dl - 1, 25, iat), CHAIN_ERR_MISMATCH);
    cr_assert_eq(chain_siwe_validate(&m, "evil.example", 12, 25, iat), CHAIN_ERR_MISMATCH);
    cr_assert_eq(chain_siwe_validate(&m, dom, dl, 1, iat), CHAIN_ERR_MISMATCH);
    /* Not Before holds from its second on */
    cr_assert_eq(chain_siwe_validate(&m, dom, dl, 25, nbf - 1), CHAIN_ERR_NOT_YET);
    cr_assert_eq(chain_siwe_validate(&m, dom, dl, 25, nbf), CHAIN_OK);
    /* expired from its second on */
    cr_assert_eq(chain_siwe_validate(&m, dom, dl, 25, exp - 1), CHAIN_OK);
    cr_assert_eq(chain_siwe_validate(&m, dom, dl, 25, exp), CHAIN_ERR_EXPIRED);

    /* Issued At up to 60 s ahead of our clock */
    const char *ahead = "flowpay.example wants you to sign in with your Ethereum account:\n"
                        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\n\n\n"
                        "URI: https://flowpay.example\nVersion: 1\nChain ID: 25\n"
                        "Nonce: abcdefgh\nIssued At: 2026-11-21T09:00:00Z";
    cr_assert_eq(parse(&m, ahead), CHAIN_OK);
    cr_assert_eq(chain_siwe_validate(&m, dom, dl, 25, iat - 60), CHAIN_OK);
    cr_assert_eq(chain_siwe_validate(&m, dom, dl, 25, iat - 61), CHAIN_ERR_NOT_YET);
    cr_assert_eq(chain_siwe_validate(&m, dom, dl, 25, iat + 86400 * 365), CHAIN_OK,
                 "no expiry: an old message is the nonce check's business");
}

/* messages signed by ethers' personal_sign: parse, recover the signer, validate */
Test(chain_siwe, ethers_signed_messages)
{
    json_t *root = fx_load();
    json_t *v;
    size_t i;
    json_array_foreach(fx_get(root, "siwe"), i, v)
    {
        const char *msg = fx_str(v, "message");
        chain_siwe_t m;
        cr_assert_eq(parse(&m, msg), CHAIN_OK, "message %zu: %s", i, m.err_field);
        chain_addr_t want = fx_addr(v, "address"), signer;
        cr_assert(chain_addr_eq(&m.address, &want));
        uint8_t sig[CHAIN_SIG_LEN];
        fx_hex_exact(fx_str(v, "signature"), sig, sizeof(sig));
        cr_assert_eq(chain_eip191_recover(&signer, msg, strlen(msg), sig, 0), CHAIN_OK);
        cr_assert(chain_addr_eq(&signer, &m.address), "message %zu", i);
        char dom[64];
        snprintf(dom, sizeof(dom), "%.*s", (int)m.domain.len, m.domain.ptr);
        cr_assert_eq(chain_siwe_validate(&m, dom, strlen(dom), m.chain_id, m.issued_at), CHAIN_OK);
    }
    json_t *second = json_array_get(fx_get(root, "siwe"), 1);
    chain_siwe_t m;
    cr_assert_eq(parse(&m, fx_str(second, "message")), CHAIN_OK);
    cr_assert_eq(m.issued_at, 1795251600, "10:00+01:00 is 09:00Z");
    cr_assert_eq(m.expiration_time, 1795251600 + 1800, "09:30:00.5 rounds down");
    cr_assert_eq(m.resource_count, 2);
    json_decref(root);
}

Test(chain_siwe, compose)
{
    chain_addr_t addr = fx_addr_str("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266");
    chain_siwe_params_t p = {
        .domain = "localhost:8080",
        .address = &addr,
        .uri = "http://localhost:8080",
        .chain_id = 31337,
        .nonce = "k3PzR8vQ2mXa",
        .issued_at = 1795251600,
        .has_expiration_time = true,
        .expiration_time = 1795251600 + 600,
    };
    char out[CHAIN_SIWE_MAX_LEN + 1];
    size_t len;
    cr_assert_eq(chain_siwe_compose(out, sizeof(out), &len, &p), CHAIN_OK);
    cr_assert_str_eq(out, "localhost:8080 wants you to sign in with your Ethereum account:\n"
                          "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266\n\n\n"
                          "URI: http://localhost:8080\nVersion: 1\nChain ID: 31337\n"
                          "Nonce: k3PzR8vQ2mXa\nIssued At: 2026-11-21T09:00:00Z\n"
                          "Expiration Time: 2026-11-21T09:10:00Z");
    cr_assert_eq(len, strlen(out));
    chain_siwe_t m;
    cr_assert_eq(chain_siwe_parse(&m, out, len), CHAIN_OK);
    cr_assert(chain_addr_eq(&m.address, &addr) && m.chain_id == 31337);
    cr_assert(m.issued_at == p.issued_at && m.expiration_time == p.expiration_time);

    p.statement = "Sign in to FlowPay.";
    p.has_expiration_time = false;
    cr_assert_eq(chain_siwe_compose(out, sizeof(out), &len, &p), CHAIN_OK);
    cr_assert_eq(chain_siwe_parse(&m, out, len), CHAIN_OK);
    assert_span(m.statement, "Sign in to FlowPay.");
    cr_assert(!m.has_expiration_time);

    cr_assert_eq(chain_siwe_compose(out, 100, &len, &p), CHAIN_ERR_SHORT_BUFFER);
    chain_siwe_params_t bad = p;
    bad.nonce = "short";
    cr_assert_eq(chain_siwe_compose(out, sizeof(out), &len, &bad), CHAIN_ERR_SYNTAX);
    bad = p;
    bad.uri = "not a uri";
    cr_assert_eq(chain_siwe_compose(out, sizeof(out), &len, &bad), CHAIN_ERR_SYNTAX);
    bad = p;
    bad.statement = "two\nlines";
    cr_assert_eq(chain_siwe_compose(out, sizeof(out), &len, &bad), CHAIN_ERR_SYNTAX);
    bad = p;
    bad.domain = "https://flowpay.example/";
    cr_assert_eq(chain_siwe_compose(out, sizeof(out), &len, &bad), CHAIN_ERR_SYNTAX);
    bad = p;
    bad.issued_at = INT64_MAX;
    cr_assert_eq(chain_siwe_compose(out, sizeof(out), &len, &bad), CHAIN_ERR_OVERFLOW);
}
