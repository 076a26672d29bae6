/*
 * Execution rows to the API's execution object; see execution_model.h.
 */
#include "actors/execution_model.h"
#include <stdlib.h>
#include <string.h>
#include "chain/hex.h"
#include "chain/rfc3339.h"

/* A nullable bigint column as a JSON number or null. */
static json_t *col_int(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return json_null();
    return json_integer((json_int_t)strtoll(PQgetvalue(res, row, col), NULL, 10));
}

/* A nullable epoch-seconds column as an RFC 3339 string, or null. */
static json_t *col_time(const PGresult *res, int row, int col)
{
    char buf[CHAIN_RFC3339_SIZE];
    if (PQgetisnull(res, row, col) ||
        chain_rfc3339_format(strtoll(PQgetvalue(res, row, col), NULL, 10), buf) != CHAIN_OK)
        return json_null();
    return json_string(buf);
}

/* A nullable numeric column of base units as a decimal string with `decimals`, or null; false
 * when the column is not a decimal integer. */
static bool col_units(const PGresult *res, int row, int col, unsigned decimals, json_t **out)
{
    *out = NULL;
    if (PQgetisnull(res, row, col)) {
        *out = json_null();
        return true;
    }
    const char *dec = PQgetvalue(res, row, col);
    chain_u256_t v;
    char buf[CHAIN_U256_UNITS_SIZE];
    if (chain_u256_from_dec(&v, dec, strlen(dec)) != CHAIN_OK)
        return false;
    chain_u256_format_units(&v, decimals, buf);
    *out = json_string(buf);
    return true;
}

/* The registry entry of the token column (hex without 0x), or NULL. */
static const intent_token_t *find_token(const char *hex, const intent_token_t *tokens, size_t n)
{
    chain_addr_t addr;
    if (chain_hex_decode_exact(addr.bytes, sizeof(addr.bytes), hex, strlen(hex), 0) != CHAIN_OK)
        return NULL;
    for (size_t i = 0; i != n; ++i)
        if (chain_addr_eq(&tokens[i].address, &addr))
            return &tokens[i];
    return NULL;
}

json_t *execution_to_json(const PGresult *res, int row, int first_col, const intent_token_t *tokens,
                          size_t num_tokens)
{
    int c = first_col;
    if (row < 0 || row >= PQntuples(res) || c < 0 || c + EXECUTION_COLUMN_COUNT > PQnfields(res))
        return NULL;
    const intent_token_t *token = find_token(PQgetvalue(res, row, c + 12), tokens, num_tokens);
    if (token == NULL)
        return NULL;
    const char *tx = PQgetvalue(res, row, c + 4);
    char tx_hash[2 * 32 + 3];
    if (strlen(tx) != 64)
        return NULL;
    tx_hash[0] = '0';
    tx_hash[1] = 'x';
    memcpy(tx_hash + 2, tx, 65);
    json_t *amount, *gas_price;
    if (!col_units(res, row, c + 5, token->decimals, &amount))
        return NULL;
    if (!col_units(res, row, c + 7, CHAIN_U256_GWEI_DECIMALS, &gas_price)) {
        json_decref(amount);
        return NULL;
    }
    json_t *error =
        PQgetisnull(res, row, c + 9) ? json_null() : json_string(PQgetvalue(res, row, c + 9));
    /* "o" steals each reference, also the ones of a failed pack (jansson documents this) */
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                     PQgetvalue(res, row, c), "intentId", PQgetvalue(res, row, c + 1), "period",
                     (json_int_t)strtoll(PQgetvalue(res, row, c + 2), NULL, 10), "status",
                     PQgetvalue(res, row, c + 3), "txHash", tx_hash, "amount", amount, "gasUsed",
                     col_int(res, row, c + 6), "gasPriceGwei", gas_price, "blockNumber",
                     col_int(res, row, c + 8), "error", error, "createdAt",
                     col_time(res, row, c + 10), "confirmedAt", col_time(res, row, c + 11));
}
