/*
 * GET /api/openapi.json: the OpenAPI 3.1 document of this API, actors/openapi.json, compiled into
 * the binary (actors/embed_openapi.cmake). tests/test_openapi.c checks it against the routes the
 * router serves, both ways, so that the two cannot drift apart.
 */
#include "actors/api_guard.h"
#include "net/http_util.h"

extern const char api_openapi_json[];
extern const size_t api_openapi_json_len;

const char *api__openapi_document(size_t *len)
{
    *len = api_openapi_json_len;
    return api_openapi_json;
}

static int on_openapi(h2o_req_t *req, const net_router_match_t *match, void *data)
{
    /* static bytes: sent without a copy */
    net_http_send_owned(req, 200, "application/json",
                        h2o_iovec_init(api_openapi_json, api_openapi_json_len));
    return 0;
}

void api__openapi_routes(api_t *api, net_router_t *router)
{
    static const api_route_t routes[] = {{"GET", "/api/openapi.json", on_openapi}};
    api__add_routes(api, router, routes, 1);
}
