/*
 * The execution object of api.md ({"id","intentId","period","status","txHash","amount","gasUsed",
 * "gasPriceGwei","blockNumber","error","createdAt","confirmedAt"}) rendered from a database row,
 * for the API (an intent's executions, the user's history) and the engine (its events).
 *
 * A query selects EXECUTION_COLUMNS FROM EXECUTION_FROM (the executions joined to their intents,
 * since the amount is answered in token units and the token is the intent's) and passes the row
 * to execution_to_json with the column index where EXECUTION_COLUMNS begins, so that the columns
 * can follow others of the caller's. Every column comes as PostgreSQL's text form.
 *
 * Decisions: times are whole seconds (fractions dropped), like the intent object's; a confirmed
 * execution's gas figures are numbers (gasUsed, blockNumber fit in 53 bits for any real chain),
 * the gas price a decimal string in gwei; absent values are null.
 */
#ifndef ACTORS_EXECUTION_MODEL_H
#define ACTORS_EXECUTION_MODEL_H

#include <stddef.h>
#include <jansson.h>
#include <libpq-fe.h>
#include "actors/intent_model.h"

/** The columns execution_to_json reads, selected from EXECUTION_FROM; the last one (not part of
 * the object) is created_at in microseconds, the key of a newest-first cursor. */
#define EXECUTION_COLUMNS                                                                          \
    "e.id::text, e.intent_id::text, e.period, e.status, encode(e.tx_hash, 'hex'), e.amount::text," \
    " e.gas_used, e.gas_price_wei::text, e.block_number, e.error,"                                 \
    " floor(extract(epoch FROM e.created_at))::bigint,"                                            \
    " floor(extract(epoch FROM e.confirmed_at))::bigint, encode(i.token, 'hex'),"                  \
    " (extract(epoch FROM e.created_at) * 1000000)::bigint"
/** The tables EXECUTION_COLUMNS names: `e` the execution, `i` its intent. */
#define EXECUTION_FROM "executions e JOIN intents i ON i.id = e.intent_id"
/** Number of columns of EXECUTION_COLUMNS. */
#define EXECUTION_COLUMN_COUNT 14
/** Index (from the first column) of the cursor key: created_at in microseconds since 1970. */
#define EXECUTION_COL_CURSOR 13
/** Index (from the first column) of the execution's id. */
#define EXECUTION_COL_ID 0

/**
 * The execution object of row `row` of `res`, whose EXECUTION_COLUMNS begin at `first_col`.
 * The amount is shown with the decimals of the intent's token, looked up in the token registry
 * `tokens` (`num_tokens` entries). Returns a new reference, or NULL when the row cannot be shown
 * (a token the registry does not know, a malformed column) or memory ran out.
 */
json_t *execution_to_json(const PGresult *res, int row, int first_col, const intent_token_t *tokens,
                          size_t num_tokens);

#endif
