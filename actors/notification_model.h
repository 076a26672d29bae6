/*
 * The notification as the API speaks it (api.md, "Notifications"):
 * {"id","type","title","message","read","createdAt"}. Pure: no I/O.
 *
 * Whoever inserts a notification (the engine, the weekly summary) selects NOTIFICATION_COLUMNS
 * (e.g. in "INSERT ... RETURNING " NOTIFICATION_COLUMNS), renders the row with
 * notification_to_json and pushes it with notifications_publish_created (actors/events.h), so
 * that the user's open sockets see it as `notification.created`.
 */
#ifndef ACTORS_NOTIFICATION_MODEL_H
#define ACTORS_NOTIFICATION_MODEL_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>

/** The notification object's columns of table `notifications`, in the order
 * notification_to_json reads them (6 columns: id, type, title, message, read, created_at as
 * unix seconds). Usable as "SELECT " NOTIFICATION_COLUMNS " FROM notifications ..." or after
 * RETURNING. */
#define NOTIFICATION_COLUMNS                                                                       \
    "id::text, type, title, message, (read_at IS NOT NULL),"                                       \
    " extract(epoch FROM created_at)::bigint"
/** How many columns NOTIFICATION_COLUMNS selects. */
#define NOTIFICATION_NUM_COLUMNS 6

/** The notification types of api.md; the schema's CHECK holds the same list. */
#define NOTIFICATION_EXECUTION_SUCCEEDED "execution_succeeded"
#define NOTIFICATION_EXECUTION_DELAYED "execution_delayed"
#define NOTIFICATION_EXECUTION_FAILED "execution_failed"
#define NOTIFICATION_LOW_BUFFER "low_buffer"
#define NOTIFICATION_WEEKLY_SUMMARY "weekly_summary"

/** Renders row `row` of `res`, whose columns from `first_col` on are NOTIFICATION_COLUMNS, as
 * the notification object (a new reference), or NULL when out of memory. */
json_t *notification_to_json(const PGresult *res, int row, int first_col);
/** True when `type` is one of the notification types. */
bool notification_type_valid(const char *type);

#endif
