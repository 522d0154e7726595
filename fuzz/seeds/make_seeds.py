#!/usr/bin/env python3
"""Writes the seed corpora of the `decode` and `protocol` fuzz targets (deterministic).

    python3 fuzz/seeds/make_seeds.py

Tokens are real HS256 JWS (signed with a fixed key, as PyJWT signs them for
djangorestframework-simplejwt: compact JSON, `{"alg":"HS256","typ":"JWT"}`), or carry the claim
sets and headers of real providers' access tokens (Azure AD v2, Auth0, Keycloak, Cognito) with a
signature of the right length. Answers are the bodies those servers send: SimpleJWT's login,
refresh (with and without rotation) and error bodies, DRF's throttling and method errors, OAuth
2.0 token answers and RFC 6749 error bodies, proxies' HTML.

The `session` seeds are written by the `session` target itself (see its module docs), and
`regressions/` holds inputs that once broke an invariant.
"""

import base64
import hashlib
import hmac
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = b"django-insecure-fuzz-seed-key"
IAT = 1_732_699_700  # 2024-11-27 09:28:20 UTC


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))


def hs256(payload: dict, header=None) -> str:
    header = header or {"alg": "HS256", "typ": "JWT"}
    signing_input = b64(compact(header).encode()) + "." + b64(compact(payload).encode())
    sig = hmac.new(KEY, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(sig)


def with_fake_sig(payload_text: str, header: dict, sig_len: int) -> str:
    sig = hashlib.sha512(payload_text.encode()).digest() * (sig_len // 64 + 1)
    return b64(compact(header).encode()) + "." + b64(payload_text.encode()) + "." + b64(sig[:sig_len])


def jti(n: int) -> str:
    return hashlib.md5(str(n).encode()).hexdigest()


def simplejwt(kind: str, lifetime: int, n: int, user_id=1, iat=IAT) -> str:
    return hs256(
        {"token_type": kind, "exp": iat + lifetime, "iat": iat, "jti": jti(n), "user_id": user_id}
    )


ACCESS = simplejwt("access", 300, 1)
REFRESH = simplejwt("refresh", 86_400, 2)
ACCESS2 = simplejwt("access", 300, 3, iat=IAT + 270)
REFRESH2 = simplejwt("refresh", 86_400, 4, iat=IAT + 270)

AZURE = with_fake_sig(
    compact(
        {
            "aud": "api://5f3c2a1e-8d4b-4c6a-9e7f-0a1b2c3d4e5f",
            "iss": "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
            "iat": IAT,
            "nbf": IAT,
            "exp": IAT + 4455,
            "aio": "AWQAm/8YAAAA1b2c3d4e5f",
            "azp": "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d",
            "azpacr": "1",
            "name": "Device Seven",
            "oid": "9f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0",
            "preferred_username": "device7@contoso.com",
            "rh": "0.ARoAv4j5cvGGr0GRqy180BHbR1_-abc.",
            "roles": ["Telemetry.Write"],
            "scp": "telemetry.write",
            "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
            "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
            "uti": "nTr2Rz4DHUGZCk1YvCMaAA",
            "ver": "2.0",
        }
    ),
    {"typ": "JWT", "alg": "RS256", "kid": "L1KfKFI_jnXbwWc22xZxw1sUHH0"},
    256,
)

AUTH0 = with_fake_sig(
    compact(
        {
            "iss": "https://tenant.eu.auth0.com/",
            "sub": "auth0|6745a1b2c3d4e5f6a7b8c9d0",
            "aud": ["https://api.example.com", "https://tenant.eu.auth0.com/userinfo"],
            "iat": IAT,
            "exp": IAT + 86_400,
            "scope": "openid profile offline_access read:telemetry",
            "azp": "Xk3mPq9rT2vW5yZ8aB1cD4eF7gH0jK3L",
            "permissions": ["read:telemetry", "write:telemetry"],
        }
    ),
    {"alg": "RS256", "typ": "JWT", "kid": "Ms2nP8yN0Q1rT7vX"},
    256,
)

KEYCLOAK = with_fake_sig(
    compact(
        {
            "exp": IAT + 300,
            "iat": IAT,
            "auth_time": IAT - 5,
            "jti": "onrtac:3b1f2e4d-5c6a-7b8c-9d0e-1f2a3b4c5d6e",
            "iss": "https://sso.example.org/realms/devices",
            "aud": "account",
            "sub": "f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b",
            "typ": "Bearer",
            "azp": "device-fleet",
            "sid": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
            "acr": "1",
            "realm_access": {"roles": ["offline_access", "uma_authorization", "device"]},
            "resource_access": {"account": {"roles": ["manage-account", "view-profile"]}},
            "scope": "profile email",
            "email_verified": False,
            "preferred_username": "device-7",
        }
    ),
    {"alg": "RS256", "typ": "JWT", "kid": "x3vB9pQ2mN7kL0jH5gF1dS8aZ4cX6vB"},
    256,
)

COGNITO = with_fake_sig(
    compact(
        {
            "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
            "iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEfGhI",
            "client_id": "1example23456789",
            "origin_jti": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
            "event_id": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
            "token_use": "access",
            "scope": "aws.cognito.signin.user.admin",
            "auth_time": IAT,
            "exp": IAT + 3600,
            "iat": IAT,
            "jti": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
            "username": "device-7",
        }
    ),
    {"kid": "abcdefghijklmnopqrsexample=", "alg": "RS256"},
    256,
)

RFC7519 = (
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)

# RFC 7516 appendix A.1 (RSAES-OAEP and AES GCM): five segments.
JWE = (
    "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ."
    "OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGeipsEdY3mx_etLbbWSrFr05kLzcSr4qKAq7YN7e9jwQRb23nfa6c9d-StnImGyFDbSv04uVuxIp5Zms1gNxKKK2Da14B8S4rzVRltdYwam_lDp5XnZAYpQdb76FdIKLaVmqgfwX7XWRxv2322i-vDxRfqNzo_tETKzpVLzfiwQyeyPGLBIO56YJ7eObdv0je81860ppamavo35UgoRdbYaBcoh9QcfylQr66oc6vFWXRcZ_ZT2LawVCWTIy3brGPi6UklfCpIMfIjf7iGdXKHzg."
    "48V1_ALb6US04U3b."
    "5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A."
    "XFBoMYUZodetZdvTiFvSkQ"
)


def decode_seeds():
    """Token seeds. Since e593d62 (serde-json-core) three of them have another outcome, as
    documented: `float-and-exponent-dates` is `InvalidNumericDate { exp }` without the
    `float-dates` feature (was exp 1732700000, iat 1732699700, nbf 0); `escaped-keys-and-strings`
    is `Json` for `Claims` because `sub` holds a surrogate pair escape (`TimeClaims` still reads
    exp 1732700000); `deep-unknown-claim` nests 128 levels and is `TooDeep` (was read). The
    `-bmp`, `nested-16-levels` and `lenient-unknown-values` seeds keep what they covered within
    the new limits."""
    none_alg = b64(b'{"alg":"none"}') + "." + b64(compact({"sub": "device-7", "exp": IAT + 60}).encode()) + "."
    floats = with_fake_sig('{"exp":1732700000.5,"iat":1.7326997E9,"nbf":-0}', {"alg": "HS256"}, 32)
    escaped = with_fake_sig(
        '{"e\\u0078p":1732700000,"iss":"https:\\/\\/auth.example.com\\/","sub":"d\\u00e9vice \\ud83d\\ude80"}',
        {"alg": "HS256"},
        32,
    )
    parts = ACCESS.split(".")
    padded = parts[0] + "." + parts[1] + "=" * (-len(parts[1]) % 4) + "." + parts[2]
    big_payload = compact({"exp": IAT + 300, "iat": IAT, "groups": ["g-%03d" % i for i in range(100)]})
    big = with_fake_sig(big_payload, {"alg": "RS256", "kid": "k"}, 256)
    duplicate = with_fake_sig('{"exp":1,"exp":2}', {"alg": "HS256"}, 32)
    deep = with_fake_sig('{"exp":1732700000,"x":' + "[" * 127 + "]" * 127 + "}", {"alg": "HS256"}, 32)
    # Read: a BMP escape, 16 levels with the payload object, unknown values serde-json-core
    # skips without checking them.
    escaped_bmp = with_fake_sig(
        '{"e\\u0078p":1732700000,"iss":"https:\\/\\/auth.example.com\\/","sub":"d\\u00e9vice \\u6771"}',
        {"alg": "HS256"},
        32,
    )
    nested_16 = with_fake_sig('{"exp":1732700000,"x":' + "[" * 15 + "]" * 15 + "}", {"alg": "HS256"}, 32)
    lenient = with_fake_sig('{"a":tru,"b":1.2.3,"c":[1 2],"exp":1732700000}', {"alg": "HS256"}, 32)
    return {
        "simplejwt-access": ACCESS,
        "simplejwt-refresh": REFRESH,
        "simplejwt-access-uuid-user": simplejwt("access", 300, 5, user_id="5f3c2a1e-8d4b-4c6a-9e7f-0a1b2c3d4e5f"),
        "azure-ad-v2-access": AZURE,
        "auth0-access-aud-array": AUTH0,
        "keycloak-access": KEYCLOAK,
        "cognito-access": COGNITO,
        "rfc7519-example": RFC7519,
        "rfc7516-jwe": JWE,
        "alg-none": none_alg,
        "float-and-exponent-dates": floats,
        "escaped-keys-and-strings": escaped,
        "padded-payload": padded,
        "large-payload": big,
        "duplicate-exp": duplicate,
        "deep-unknown-claim": deep,
        "escaped-keys-and-strings-bmp": escaped_bmp,
        "nested-16-levels": nested_16,
        "lenient-unknown-values": lenient,
    }


def protocol_seeds():
    drf_refresh_401 = compact({"detail": "Token is blacklisted", "code": "token_not_valid"})
    return {
        # djangorestframework-simplejwt (TokenObtainPairView, TokenRefreshView)
        "simplejwt-login": ("simplejwt login 200", compact({"refresh": REFRESH, "access": ACCESS})),
        "simplejwt-refresh-rotated": ("simplejwt refresh 200", compact({"access": ACCESS2, "refresh": REFRESH2})),
        "simplejwt-refresh": ("simplejwt refresh 200", compact({"access": ACCESS2})),
        "simplejwt-refresh-blacklisted": ("simplejwt refresh 401", drf_refresh_401),
        "simplejwt-refresh-expired": (
            "simplejwt refresh 401",
            compact({"detail": "Token is invalid or expired", "code": "token_not_valid"}),
        ),
        "simplejwt-login-bad-credentials": (
            "simplejwt login 401",
            compact({"detail": "No active account found with the given credentials"}),
        ),
        "simplejwt-refresh-missing-field": ("simplejwt refresh 400", compact({"refresh": ["This field is required."]})),
        "simplejwt-refresh-get": ("simplejwt refresh 405", compact({"detail": 'Method "GET" not allowed.'})),
        "simplejwt-refresh-append-slash": ("simplejwt refresh 301", ""),
        "drf-throttled": (
            "simplejwt refresh 429 60",
            compact({"detail": "Request was throttled. Expected available in 60 seconds."}),
        ),
        "simplejwt-outage": (
            "simplejwt refresh 503 30",
            compact({"detail": "Service temporarily unavailable, try again later."}),
        ),
        "nginx-502": (
            "simplejwt refresh 502",
            "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n",
        ),
        "captive-portal-200": ("simplejwt login 200", "<!DOCTYPE html><html><body>Please log in to the Wi-Fi</body></html>"),
        "truncated-login": ("simplejwt login 200", compact({"refresh": REFRESH, "access": ACCESS})[:301]),
        # OAuth 2.0 (RFC 6749 section 5) as real servers answer
        "keycloak-refresh": (
            "oauth2 refresh 200",
            compact(
                {
                    "access_token": KEYCLOAK,
                    "expires_in": 300,
                    "refresh_expires_in": 1800,
                    "refresh_token": hs256({"exp": IAT + 1800, "iat": IAT, "typ": "Refresh"}),
                    "token_type": "Bearer",
                    "not-before-policy": 0,
                    "session_state": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
                    "scope": "profile email",
                }
            ),
        ),
        "azure-v2-refresh": (
            "oauth2 refresh 200",
            compact(
                {
                    "token_type": "Bearer",
                    "scope": "api://5f3c2a1e/telemetry.write",
                    "expires_in": 4455,
                    "ext_expires_in": 4455,
                    "access_token": AZURE,
                    "refresh_token": "0.ARoAv4j5cvGGr0GRqy180BHbR1_-AbCdEf" + "x" * 200,
                }
            ),
        ),
        "azure-v1-string-expires-in": (
            "oauth2 refresh 200",
            compact(
                {
                    "token_type": "Bearer",
                    "expires_in": "3599",
                    "ext_expires_in": "3599",
                    "expires_on": str(IAT + 3599),
                    "not_before": str(IAT),
                    "resource": "https://management.core.windows.net/",
                    "access_token": AZURE,
                }
            ),
        ),
        "google-refresh-no-rotation": (
            "oauth2 refresh 200",
            compact(
                {
                    "access_token": "ya29.a0AfB_byC1d2E3f4G5h6I7j8K9l0M" + "N" * 150,
                    "expires_in": 3599,
                    "scope": "https://www.googleapis.com/auth/cloud-platform",
                    "token_type": "Bearer",
                    "id_token": AUTH0,
                }
            ),
        ),
        "auth0-client-credentials": (
            "oauth2-cc login 200",
            compact({"access_token": AUTH0, "scope": "read:telemetry", "expires_in": 86400, "token_type": "Bearer"}),
        ),
        "cognito-client-credentials-basic": (
            "oauth2-basic login 200",
            compact({"access_token": COGNITO, "expires_in": 3600, "token_type": "Bearer"}),
        ),
        # RFC 6749 section 5.2 errors, with real servers' descriptions
        "keycloak-invalid-grant": (
            "oauth2 refresh 400",
            compact({"error": "invalid_grant", "error_description": "Token is not active"}),
        ),
        "azure-invalid-grant": (
            "oauth2 refresh 400",
            compact(
                {
                    "error": "invalid_grant",
                    "error_description": "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity.",
                    "error_codes": [70008],
                    "timestamp": "2024-11-27 09:28:20Z",
                    "trace_id": "0b4a9f1e-1c2d-4e3f-8a9b-0c1d2e3f4a5b",
                    "correlation_id": "5f3c2a1e-8d4b-4c6a-9e7f-0a1b2c3d4e5f",
                    "error_uri": "https://login.microsoftonline.com/error?code=70008",
                }
            ),
        ),
        "invalid-client": (
            "oauth2-cc login 401",
            compact({"error": "invalid_client", "error_description": "Invalid client or Invalid client credentials"}),
        ),
        "unsupported-grant-type": ("oauth2 refresh 400", compact({"error": "unsupported_grant_type"})),
        "invalid-scope": ("oauth2-basic login 400", compact({"error": "invalid_scope", "error_description": "Invalid scopes: admin"})),
        "server-error-400": ("oauth2 refresh 400", compact({"error": "server_error"})),
        "temporarily-unavailable": ("oauth2 refresh 503 120", compact({"error": "temporarily_unavailable"})),
        "slow-down": ("oauth2 refresh 400", compact({"error": "slow_down"})),
        # Since e593d62 (serde-json-core): a non-integer `expires_in` is `InvalidExpiresIn`
        # without the `float-dates` feature; 17 levels of nesting are `AnswerError::Json`.
        "float-expires-in": (
            "oauth2 refresh 200",
            '{"access_token":"ya29.a0AfB_byC1d2E3","expires_in":3599.5,"token_type":"Bearer"}',
        ),
        "nested-17-levels": (
            "simplejwt refresh 200",
            '{"access":"' + ACCESS2 + '","x":' + "[" * 16 + "]" * 16 + "}",
        ),
    }


def write(directory: str, files: dict):
    os.makedirs(directory, exist_ok=True)
    for name, content in files.items():
        with open(os.path.join(directory, name), "w", encoding="utf-8", newline="") as f:
            f.write(content)


if __name__ == "__main__":
    write(os.path.join(HERE, "decode"), decode_seeds())
    write(
        os.path.join(HERE, "protocol"),
        {name: head + "\n" + body for name, (head, body) in protocol_seeds().items()},
    )
    print("decode and protocol seeds written under", HERE)
