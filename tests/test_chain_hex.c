#include <criterion/criterion.h>
#include <string.h>
#include "chain/hex.h"

/* decode a NUL-terminated string; returns the error code and the byte count in *n */
static int decode(const char *s, uint8_t *dst, size_t cap, size_t *n, int flags)
{
    return chain_hex_decode(dst, cap, n, s, strlen(s), flags);
}

Test(chain_hex, encode_lowercase_with_and_without_prefix)
{
    const uint8_t in[] = {0x00, 0x01, 0xab, 0xCD, 0xff};
    char out[16];
    cr_assert_eq(chain_hex_encode(out, sizeof(out), in, sizeof(in), 0), CHAIN_OK);
    cr_assert_str_eq(out, "0001abcdff");
    cr_assert_eq(chain_hex_encode(out, sizeof(out), in, sizeof(in), CHAIN_HEX_0X), CHAIN_OK);
    cr_assert_str_eq(out, "0x0001abcdff");
}

Test(chain_hex, encode_empty)
{
    char out[3] = "zz";
    cr_assert_eq(chain_hex_encode(out, 1, NULL, 0, 0), CHAIN_OK);
    cr_assert_str_eq(out, "");
    cr_assert_eq(chain_hex_encode(out, 3, NULL, 0, CHAIN_HEX_0X), CHAIN_OK);
    cr_assert_str_eq(out, "0x");
}

Test(chain_hex, encode_short_buffer_writes_nothing)
{
    const uint8_t in[] = {0x12, 0x34};
    char out[8] = "untouch";
    cr_assert_eq(chain_hex_encoded_size(2, CHAIN_HEX_0X), 7);
    cr_assert_eq(chain_hex_encode(out, 6, in, 2, CHAIN_HEX_0X), CHAIN_ERR_SHORT_BUFFER);
    cr_assert_str_eq(out, "untouch");
    cr_assert_eq(chain_hex_encode(out, 7, in, 2, CHAIN_HEX_0X), CHAIN_OK);
    cr_assert_str_eq(out, "0x1234");
}

Test(chain_hex, decode_either_case)
{
    uint8_t b[4];
    size_t n;
    cr_assert_eq(decode("deadBEEF", b, sizeof(b), &n, 0), CHAIN_OK);
    cr_assert_eq(n, 4);
    cr_assert_eq(b[0], 0xde);
    cr_assert_eq(b[1], 0xad);
    cr_assert_eq(b[2], 0xbe);
    cr_assert_eq(b[3], 0xef);
}

Test(chain_hex, decode_prefix_rules)
{
    uint8_t b[4];
    size_t n;
    /* no flag: the prefix is not hex */
    cr_assert_eq(decode("0x12", b, sizeof(b), &n, 0), CHAIN_ERR_SYNTAX);
    cr_assert_eq(decode("0x12", b, sizeof(b), &n, CHAIN_HEX_0X_OPTIONAL), CHAIN_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(b[0], 0x12);
    cr_assert_eq(decode("12", b, sizeof(b), &n, CHAIN_HEX_0X_OPTIONAL), CHAIN_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(decode("12", b, sizeof(b), &n, CHAIN_HEX_0X_REQUIRED), CHAIN_ERR_SYNTAX);
    cr_assert_eq(decode("0x12", b, sizeof(b), &n, CHAIN_HEX_0X_REQUIRED), CHAIN_OK);
    /* only a lowercase x */
    cr_assert_eq(decode("0X12", b, sizeof(b), &n, CHAIN_HEX_0X_OPTIONAL), CHAIN_ERR_SYNTAX);
    /* "0x" alone is the empty string; "" without prefix too */
    cr_assert_eq(decode("0x", b, sizeof(b), &n, CHAIN_HEX_0X_REQUIRED), CHAIN_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(decode("", b, sizeof(b), &n, 0), CHAIN_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(decode("", b, sizeof(b), &n, CHAIN_HEX_0X_REQUIRED), CHAIN_ERR_SYNTAX);
}

Test(chain_hex, decode_rejects_odd_length_and_bad_digits)
{
    uint8_t b[4];
    size_t n = 99;
    cr_assert_eq(decode("123", b, sizeof(b), &n, 0), CHAIN_ERR_LENGTH);
    cr_assert_eq(n, 0);
    cr_assert_eq(decode("0x1", b, sizeof(b), &n, CHAIN_HEX_0X_OPTIONAL), CHAIN_ERR_LENGTH);
    const char *bad[] = {"1g",
                         "g1",
                         " 12",
                         "12 ",
                         "1 2",
                         "+1",
                         "-1",
                         "0x0x12",
                         "12\n",
                         "\xc3\xa9"
                         "1"};
    for (size_t i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i)
        cr_assert_eq(decode(bad[i], b, sizeof(b), &n, CHAIN_HEX_0X_OPTIONAL), CHAIN_ERR_SYNTAX,
                     "accepted \"%s\"", bad[i]);
    /* an embedded NUL is a bad digit, not an end of string */
    cr_assert_eq(chain_hex_decode(b, sizeof(b), &n,
                                  "12\0"
                                  "4",
                                  4, 0),
                 CHAIN_ERR_SYNTAX);
}

Test(chain_hex, decode_short_buffer)
{
    uint8_t b[2];
    size_t n;
    cr_assert_eq(decode("112233", b, sizeof(b), &n, 0), CHAIN_ERR_SHORT_BUFFER);
    cr_assert_eq(decode("1122", b, sizeof(b), &n, 0), CHAIN_OK);
    cr_assert_eq(n, 2);
}

Test(chain_hex, decode_exact_length)
{
    uint8_t b[4];
    const char *s = "0x00112233";
    cr_assert_eq(chain_hex_decode_exact(b, 4, s, strlen(s), CHAIN_HEX_0X_REQUIRED), CHAIN_OK);
    cr_assert_eq(b[3], 0x33);
    cr_assert_eq(chain_hex_decode_exact(b, 3, s, strlen(s), CHAIN_HEX_0X_REQUIRED),
                 CHAIN_ERR_LENGTH);
    uint8_t big[8];
    cr_assert_eq(chain_hex_decode_exact(big, 5, s, strlen(s), CHAIN_HEX_0X_REQUIRED),
                 CHAIN_ERR_LENGTH);
    cr_assert_eq(chain_hex_decode_exact(big, 4, "0x0011223g", 10, CHAIN_HEX_0X_REQUIRED),
                 CHAIN_ERR_SYNTAX);
}

Test(chain_hex, round_trip_every_byte_value)
{
    uint8_t in[256], back[256];
    char text[2 * 256 + 3];
    for (int i = 0; i != 256; ++i)
        in[i] = (uint8_t)i;
    cr_assert_eq(chain_hex_encode(text, sizeof(text), in, sizeof(in), CHAIN_HEX_0X), CHAIN_OK);
    cr_assert_eq(strlen(text), 2 + 512);
    size_t n;
    cr_assert_eq(
        chain_hex_decode(back, sizeof(back), &n, text, strlen(text), CHAIN_HEX_0X_REQUIRED),
        CHAIN_OK);
    cr_assert_eq(n, 256);
    cr_assert_arr_eq(in, back, 256);
}

Test(chain_hex, digit_values)
{
    cr_assert_eq(chain_hex_digit('0'), 0);
    cr_assert_eq(chain_hex_digit('9'), 9);
    cr_assert_eq(chain_hex_digit('a'), 10);
    cr_assert_eq(chain_hex_digit('F'), 15);
    cr_assert_eq(chain_hex_digit('g'), -1);
    cr_assert_eq(chain_hex_digit('/'), -1);
    cr_assert_eq(chain_hex_digit(':'), -1);
    cr_assert_eq(chain_hex_digit('@'), -1);
    cr_assert_eq(chain_hex_digit('`'), -1);
}
