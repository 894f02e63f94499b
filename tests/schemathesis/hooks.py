"""Schemathesis hooks for tests/schemathesis/run (loaded through SCHEMATHESIS_HOOKS).

Our 200s may be `application/json+base64` or `application/json+binref`, chosen by `Accept`.
Both are JSON documents (only the array payloads are encoded), so they are read as JSON and
validated against the documented schema, like `application/json`; without this, schemathesis
skips their validation.
"""

import json

import schemathesis


@schemathesis.deserializer("application/json+base64", "application/json+binref")
def array_encodings_are_json(ctx, response):
    return json.loads(response.content)
