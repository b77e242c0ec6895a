/*
 * POST {prefix}/emit: a back end's broadcast, the one thing the hub does
 * for someone who is not a client.
 *
 *   {"room": R (optional: absent, every socket), "event": E, "data": D}
 *   Authorization: Bearer <publish_token>, when the route sets one
 *
 * 200 {"ok":true} once handed on; 401, 400 or 413 with a JSON error.
 *
 * "Handed on" means the master has queued it for every worker: the emit
 * goes out on the bus with an echo, every worker (this one included)
 * delivers it when it arrives, and the answer waits for the echo. So a
 * back end that posts emits one after the other, through whichever
 * workers, has them delivered in the order it posted them.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "svc/socketio/socketio.h"

struct emit_wait {
	struct http_req *req;
	struct emit_wait *next;
};

static void
wait_push(struct sio *s, struct http_req *req)
{
	struct emit_wait *e = calloc(1, sizeof(*e));

	if (e == NULL) {
		http_error(req, 503, "overloaded", "out of memory");
		return;
	}
	e->req = req;
	if (s->emits_tail == NULL)
		s->emits_tail = &s->emits_head;
	*s->emits_tail = e;
	s->emits_tail = &e->next;
}

static struct http_req *
wait_pop(struct sio *s)
{
	struct emit_wait *e = s->emits_head;
	struct http_req *req;

	if (e == NULL)
		return NULL;
	if ((s->emits_head = e->next) == NULL)
		s->emits_tail = &s->emits_head;
	req = e->req;
	free(e);
	return req;
}

void
sio_emit_echoed(struct sio *s, const struct sio_bcast *b)
{
	struct http_req *req = wait_pop(s);

	sio_hub_deliver(s, b, NULL);
	if (req != NULL)
		http_reply(req, 200, "{\"ok\":true}", 11);
}

void
sio_emit_drop_all(struct sio *s)
{
	struct http_req *req;

	while ((req = wait_pop(s)) != NULL)
		http_drop(req);
}

/* Compares in time that does not depend on where they differ. */
static bool
same_secret(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	unsigned char d = n != m;

	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(a[i] ^ b[i % (m > 0 ? m : 1)]);
	return d == 0;
}

static bool
authorized(const struct sio *s, struct http_req *req)
{
	const char *h = http_req_header(req, "Authorization");

	if (s->conf->publish_token == NULL)
		return true;
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	h += 7;
	while (*h == ' ')
		h++;
	return same_secret(h, s->conf->publish_token);
}

static json_object *
parse_body(const char *body, size_t len)
{
	json_tokener *tok = json_tokener_new_ex(SIO_JSON_DEPTH);
	json_object *o;

	if (tok == NULL)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, body, (int)len);
	if (o != NULL && json_tokener_get_parse_end(tok) != len) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

void
sio_emit(struct sio *s, struct http_req *req)
{
	json_object *o, *room = NULL, *event, *data, *out = NULL;
	const char *body, *name = NULL;
	struct sio_bcast b = { 0 };
	size_t len, rl;

	if (!authorized(s, req)) {
		http_req_add_header(req, "WWW-Authenticate", "Bearer");
		http_error(req, 401, "unauthorized", "emit needs \"Authorization: Bearer <token>\" "
		    "with the route's publish_token");
		return;
	}
	body = http_req_body(req, &len);
	if ((long long)len > s->conf->max_payload_bytes) {
		http_error(req, 413, "payload_too_large", "the body is over max_payload_bytes (%lld)",
		    s->conf->max_payload_bytes);
		return;
	}
	o = body != NULL && len > 0 ? parse_body(body, len) : NULL;
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		http_error(req, 400, "bad_request", "expected a JSON object: "
		    "{\"room\": R (optional), \"event\": E, \"data\": D}");
		return;
	}
	if (json_object_object_get_ex(o, "room", &room) &&
	    (!json_object_is_type(room, json_type_string) ||
		(rl = (size_t)json_object_get_string_len(room)) == 0 || rl > SIO_MAX_ROOM_LEN ||
		strlen(json_object_get_string(room)) != rl)) {
		http_error(req, 400, "bad_request", "\"room\" must be a string of 1 to 200 bytes");
		goto out;
	}
	if (!json_object_object_get_ex(o, "event", &event) ||
	    !json_object_is_type(event, json_type_string) ||
	    json_object_get_string_len(event) == 0 ||
	    !sio_event_name_ok(json_object_get_string(event))) {
		http_error(req, 400, "bad_request", "\"event\" must be a non-empty string, not a "
		    "reserved name");
		goto out;
	}
	if (!json_object_object_get_ex(o, "data", &data))
		data = NULL;
	if ((out = json_object_new_array_ext(2)) == NULL ||
	    json_object_array_add(out, json_object_get(event)) != 0 ||
	    json_object_array_add(out, json_object_get(data)) != 0 ||
	    (b.data = json_object_to_json_string_length(out,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &b.datalen)) == NULL) {
		http_error(req, 503, "overloaded", "out of memory");
		goto out;
	}
	if (room != NULL)
		name = json_object_get_string(room);
	b.nsp = "/";
	b.rooms = room != NULL ? &name : NULL;
	b.nrooms = room != NULL ? 1 : 0;
	s->fig.emits++;
	if (s->redis != NULL)
		sio_redis_publish(s->redis, &b);
	if (sio_bus_send(s, &b, true) == 0) {
		/* delivered here, and answered, when the master sends it back */
		wait_push(s, req);
		goto out;
	}
	/* No bus (or it is backed up): the workers cannot be reached in order;
	 * this one at least delivers. */
	sio_hub_deliver(s, &b, NULL);
	http_reply(req, 200, "{\"ok\":true}", 11);
out:
	json_object_put(out);
	json_object_put(o);
}
