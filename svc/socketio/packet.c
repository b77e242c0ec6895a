/*
 * Socket.IO v5 packets, as socket.io-parser 4.2 reads them:
 *   <type>[<attachments>-][<nsp>,][<ack id>][<JSON>]
 * The split is by hand (it is a few characters); the JSON is json-c's.
 */
#include "config.h"

#include <string.h>

#include "svc/socketio/socketio.h"

static bool
digit(char c)
{
	return c >= '0' && c <= '9';
}

int
sio_packet_parse(const char *s, size_t len, struct sio_packet *p, const char **err)
{
	size_t i = 1;

	memset(p, 0, sizeof(*p));
	p->id = -1;
	p->nsp = "/";
	p->nsplen = 1;
	if (len == 0 || s[0] < '0' || s[0] > '6') {
		*err = "unknown packet type";
		return -1;
	}
	p->type = (enum sio_type)(s[0] - '0');
	if (p->type == SIO_BINARY_EVENT || p->type == SIO_BINARY_ACK) {
		size_t start = i;
		while (i < len && digit(s[i]) && i - start < 3)
			p->nattach = p->nattach * 10 + (s[i++] - '0');
		if (i == start || i >= len || s[i] != '-') {
			*err = "illegal attachments";
			return -1;
		}
		if (p->nattach > SIO_MAX_ATTACH) {
			*err = "too many attachments";
			return -1;
		}
		i++;
	}
	if (i < len && s[i] == '/') {
		const char *comma = memchr(s + i, ',', len - i);
		size_t end = comma != NULL ? (size_t)(comma - s) : len;
		p->nsp = s + i;
		p->nsplen = end - i;
		i = comma != NULL ? end + 1 : len;
	}
	if (i < len && digit(s[i])) {
		size_t start = i;
		p->id = 0;
		while (i < len && digit(s[i])) {
			if (i - start == 15) {
				*err = "ack id too long";
				return -1;
			}
			p->id = p->id * 10 + (s[i++] - '0');
		}
	}
	if (i < len) {
		p->data = s + i;
		p->datalen = len - i;
	}
	return 0;
}

bool
sio_event_name_ok(const char *name)
{
	static const char *const reserved[] = { "connect", "connect_error", "disconnect",
	    "disconnecting", "newListener", "removeListener", NULL };

	for (size_t i = 0; reserved[i] != NULL; i++)
		if (strcmp(name, reserved[i]) == 0)
			return false;
	return true;
}

/* socket.io-parser's isPayloadValid(). */
static bool
payload_valid(enum sio_type type, json_object *o)
{
	json_object *first;

	switch (type) {
	case SIO_CONNECT:
		return json_object_is_type(o, json_type_object);
	case SIO_DISCONNECT:
		return false;            /* it takes none */
	case SIO_CONNECT_ERROR:
		return json_object_is_type(o, json_type_string) ||
		    json_object_is_type(o, json_type_object);
	case SIO_EVENT:
	case SIO_BINARY_EVENT:
		if (!json_object_is_type(o, json_type_array) || json_object_array_length(o) == 0)
			return false;
		first = json_object_array_get_idx(o, 0);
		return json_object_is_type(first, json_type_int) ||
		    json_object_is_type(first, json_type_double) ||
		    (json_object_is_type(first, json_type_string) &&
			sio_event_name_ok(json_object_get_string(first)));
	case SIO_ACK:
	case SIO_BINARY_ACK:
		return json_object_is_type(o, json_type_array);
	}
	return false;
}

json_object *
sio_packet_payload(const struct sio_packet *p, const char **err)
{
	json_tokener *tok;
	json_object *o;

	if (p->data == NULL) {
		if (p->type == SIO_EVENT || p->type == SIO_BINARY_EVENT || p->type == SIO_ACK ||
		    p->type == SIO_BINARY_ACK) {
			*err = "invalid payload";
			return NULL;
		}
		return json_object_new_object();    /* CONNECT with no auth, DISCONNECT */
	}
	if ((tok = json_tokener_new_ex(SIO_JSON_DEPTH)) == NULL) {
		*err = "out of memory";
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, p->data, (int)p->datalen);
	if (o == NULL || json_tokener_get_parse_end(tok) != p->datalen) {
		json_object_put(o);
		json_tokener_free(tok);
		*err = "invalid payload";
		return NULL;
	}
	json_tokener_free(tok);
	if (!payload_valid(p->type, o)) {
		json_object_put(o);
		*err = "invalid payload";
		return NULL;
	}
	return o;
}
