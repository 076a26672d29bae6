#include <criterion/criterion.h>
#include <ctype.h>
#include <string.h>
#include "chain/address.h"

/* EIP-55's own test addresses: every one is its own checksummed form */
static const char *const eip55_vectors[] = {
    /* all caps */
    "0x52908400098527886E0F7030069857D2E4169EE7",
    "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
    /* all lower */
    "0xde709f2102306220921060314715629080e2fb77",
    "0x27b1fdb04752bbc536007a920d24acb045561c26",
    /* normal */
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
};
#define NUM_VECTORS (sizeof(eip55_vectors) / sizeof(eip55_vectors[0]))

static int parse(chain_addr_t *a, const char *s)
{
    return chain_addr_parse(a, s, strlen(s));
}

Test(chain_address, eip55_vectors_parse_and_format_back)
{
    for (size_t i = 0; i != NUM_VECTORS; ++i) {
        chain_addr_t a;
        char out[CHAIN_ADDR_STR_SIZE];
        cr_assert_eq(parse(&a, eip55_vectors[i]), CHAIN_OK, "%s", eip55_vectors[i]);
        chain_addr_format(&a, out);
        cr_assert_str_eq(out, eip55_vectors[i]);
    }
}

Test(chain_address, single_case_input_needs_no_checksum)
{
    for (size_t i = 0; i != NUM_VECTORS; ++i) {
        char lower[CHAIN_ADDR_STR_SIZE], upper[CHAIN_ADDR_STR_SIZE];
        strcpy(lower, eip55_vectors[i]);
        strcpy(upper, eip55_vectors[i]);
        for (size_t k = 2; k != 42; ++k) {
            lower[k] = (char)tolower((unsigned char)lower[k]);
            upper[k] = (char)toupper((unsigned char)upper[k]);
        }
        chain_addr_t a, b, c;
        cr_assert_eq(parse(&a, eip55_vectors[i]), CHAIN_OK);
        cr_assert_eq(parse(&b, lower), CHAIN_OK, "%s", lower);
        cr_assert_eq(parse(&c, upper), CHAIN_OK, "%s", upper);
        cr_assert(chain_addr_eq(&a, &b));
        cr_assert(chain_addr_eq(&a, &c));
        char out[CHAIN_ADDR_STR_SIZE];
        chain_addr_format(&b, out);
        cr_assert_str_eq(out, eip55_vectors[i], "formatting the lowercase form");
    }
}

Test(chain_address, wrong_checksum_is_a_distinct_error)
{
    /* flip the case of each letter of each mixed-case vector in turn */
    int flipped = 0;
    for (size_t i = 4; i != NUM_VECTORS; ++i) {
        for (size_t k = 2; k != 42; ++k) {
            char s[CHAIN_ADDR_STR_SIZE];
            strcpy(s, eip55_vectors[i]);
            if (!isalpha((unsigned char)s[k]))
                continue;
            s[k] = islower((unsigned char)s[k]) ? (char)toupper((unsigned char)s[k])
                                                : (char)tolower((unsigned char)s[k]);
            chain_addr_t a = {{0xaa}};
            int ret = parse(&a, s);
            /* a flip can make the string single-case, which carries no checksum */
            if (ret == CHAIN_OK)
                continue;
            cr_assert_eq(ret, CHAIN_ERR_CHECKSUM, "%s", s);
            cr_assert_eq(a.bytes[0], 0xaa, "output written on error");
            ++flipped;
        }
    }
    cr_assert_gt(flipped, 40);
}

Test(chain_address, rejects_malformed)
{
    chain_addr_t a;
    const struct {
        const char *s;
        int err;
    } cases[] = {
        {"", CHAIN_ERR_LENGTH},
        {"0x", CHAIN_ERR_LENGTH},
        {"5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", CHAIN_ERR_LENGTH},    /* no prefix */
        {"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe", CHAIN_ERR_LENGTH},   /* 39 digits */
        {"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed0", CHAIN_ERR_LENGTH}, /* 41 digits */
        {"0X5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", CHAIN_ERR_SYNTAX},
        {"005aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", CHAIN_ERR_SYNTAX},
        {"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg", CHAIN_ERR_SYNTAX},
        {"0x 5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe", CHAIN_ERR_SYNTAX},
    };
    for (size_t i = 0; i != sizeof(cases) / sizeof(cases[0]); ++i)
        cr_assert_eq(parse(&a, cases[i].s), cases[i].err, "\"%s\"", cases[i].s);
}

Test(chain_address, zero_address_and_equality)
{
    chain_addr_t zero = {{0}}, a;
    char out[CHAIN_ADDR_STR_SIZE];
    cr_assert(chain_addr_is_zero(&zero));
    chain_addr_format(&zero, out);
    cr_assert_str_eq(out, "0x0000000000000000000000000000000000000000");
    cr_assert_eq(parse(&a, eip55_vectors[4]), CHAIN_OK);
    cr_assert_not(chain_addr_is_zero(&a));
    cr_assert_not(chain_addr_eq(&a, &zero));
    cr_assert_eq(a.bytes[0], 0x5a);
    cr_assert_eq(a.bytes[19], 0xed);
}
