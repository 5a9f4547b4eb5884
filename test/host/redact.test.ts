// Secrets in config are masked in logs and config dumps, but the fields that describe
// them (a key's name, tenant, allowed paths) stay readable for operators.
import t from 'tap';
import { collectSecrets, redactConfig, SecretScrubber } from '../../host/src/security/redact.js';

const config = {
  plugins: [
    {
      name: 'auth',
      pluginConfig: {
        api_keys: { keys: [{ name: 'billing-svc', tenant: 'acme', sha256: 'a'.repeat(64), paths: ['/billing/**'] }] },
        jwt: { providers: [{ issuer: 'https://issuer.example', hmac_secret: 'super-secret-hmac' }] },
      },
    },
  ],
  other: { secrets: { db: 'hunter2pw' }, api_key: 'abcdef123' },
};

t.test('descriptive fields under a secret key stay readable; everything else is secret', async (t) => {
  const secrets = collectSecrets(config);
  t.ok(secrets.has('a'.repeat(64)), 'the key digest is a secret');
  t.ok(secrets.has('super-secret-hmac'));
  t.ok(secrets.has('hunter2pw'), 'an unknown field under a secret key is a secret');
  t.ok(secrets.has('abcdef123'));
  t.notOk(secrets.has('billing-svc'), "a key's name is not a secret");
  t.notOk(secrets.has('acme'), "a key's tenant is not a secret");

  const shown = JSON.stringify(redactConfig(config));
  t.notMatch(shown, /aaaaaaaa|super-secret-hmac|hunter2pw|abcdef123/);
  t.match(shown, /"name":"billing-svc","tenant":"acme","sha256":"\[redacted\]","paths":\["\/billing\/\*\*"\]/);

  const scrub = new SecretScrubber(config);
  t.equal(scrub.scrub('key billing-svc (tenant acme) hmac super-secret-hmac'), 'key billing-svc (tenant acme) hmac [redacted]');
});

t.test('log scrubbing learns secrets from JSON-text configs and JWK key material', async (t) => {
  const k = 'c2VjcmV0LXNpZ25pbmcta2V5LWZvci1ocy0yNTY';
  const scrub = new SecretScrubber({ plugins: [{ name: 'auth', pluginConfig: JSON.stringify({ jwt: { providers: [{ local_jwks: JSON.stringify({ kty: 'oct', kid: 'k1', k }) }] } }) }] });
  t.equal(scrub.scrub(`loaded key k1 = ${k}`), 'loaded key k1 = [redacted]');
});
