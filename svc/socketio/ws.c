/*
 * The WebSocket handshake's arithmetic (RFC 6455 section 4.2.2), and the
 * random ids of sessions and sockets. SHA-1 and base64 are nettle's.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>

#include "svc/socketio/socketio.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

int
sio_ws_accept(const char *key, char accept[29])
{
	struct base64_decode_ctx dc;
	struct sha1_ctx sha;
	uint8_t nonce[BASE64_DECODE_LENGTH(24)], digest[SHA1_DIGEST_SIZE];
	size_t n = sizeof(nonce), klen = key != NULL ? strlen(key) : 0;

	/* The key must be the base64 of 16 bytes: 24 characters, "==" at the end. */
	if (klen != 24)
		return -1;
	base64_decode_init(&dc);
	if (!base64_decode_update(&dc, &n, nonce, klen, key) || !base64_decode_final(&dc) ||
	    n != 16)
		return -1;
	sha1_init(&sha);
	sha1_update(&sha, klen, (const uint8_t *)key);
	sha1_update(&sha, sizeof(WS_GUID) - 1, (const uint8_t *)WS_GUID);
	sha1_digest(&sha, sizeof(digest), digest);
	base64_encode_raw(accept, sizeof(digest), digest);     /* 28 characters */
	accept[28] = '\0';
	return 0;
}

void
sio_random_id(char id[SIO_ID_LEN + 1])
{
	struct base64_encode_ctx ec;
	uint8_t raw[15];
	size_t n;

	arc4random_buf(raw, sizeof(raw));
	base64url_encode_init(&ec);
	n = base64_encode_update(&ec, id, sizeof(raw), raw);
	n += base64_encode_final(&ec, id + n);
	id[n < SIO_ID_LEN ? n : SIO_ID_LEN] = '\0';
}
