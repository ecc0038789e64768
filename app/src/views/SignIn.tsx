import { useEffect, useState } from 'preact/hooks';
import { devSignIn, listPractitioners, startSmartLaunch, type AppConfig } from '../auth';
import type { Session } from '../fhir';

export function SignIn({
  config,
  onSignedIn,
  problem,
}: {
  config: AppConfig;
  onSignedIn: (s: Session) => void;
  problem?: string;
}) {
  const [practitioners, setPractitioners] = useState<{ id: string; name: string }[] | undefined>();
  const [error, setError] = useState<string | undefined>(problem);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (config.signIn === 'development') listPractitioners().then(setPractitioners, (e: Error) => setError(e.message));
  }, [config.signIn]);

  if (config.signIn === 'off') {
    return (
      <p role="alert" class="error">
        Authorization is off on this server (AUTH=off): the page needs a signed-in practitioner.
      </p>
    );
  }

  if (config.signIn === 'smart') {
    return (
      <section aria-labelledby="sign-in-title" class="sign-in">
        <h1 id="sign-in-title">Sign in</h1>
        <p>You sign in with your organisation's identity provider; this page then acts as you on the FHIR API.</p>
        {error ? (
          <p role="alert" class="error">
            {error}
          </p>
        ) : null}
        <button
          type="button"
          disabled={busy}
          onClick={() => {
            setBusy(true);
            startSmartLaunch(config).catch((e: Error) => {
              setError(e.message);
              setBusy(false);
            });
          }}
        >
          Sign in
        </button>
      </section>
    );
  }

  const submit = async (event: Event) => {
    event.preventDefault();
    const id = String(new FormData(event.currentTarget as HTMLFormElement).get('practitioner') ?? '');
    setBusy(true);
    try {
      onSignedIn(await devSignIn(id));
    } catch (e) {
      setError((e as Error).message);
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="sign-in-title" class="sign-in">
      <h1 id="sign-in-title">Sign in (development mode)</h1>
      <p>
        Development mode: pick a practitioner and the server issues a token for them with a clinician's scopes. This
        sign-in does not exist on a server configured with an identity provider.
      </p>
      {error ? (
        <p role="alert" class="error">
          {error}
        </p>
      ) : null}
      {!practitioners ? (
        <p class="loading">Loading practitioners…</p>
      ) : practitioners.length === 0 ? (
        <p class="empty">No Practitioner is stored yet (npm start loads the examples).</p>
      ) : (
        <form onSubmit={submit}>
          <label for="practitioner">Practitioner</label>
          <select id="practitioner" name="practitioner" required>
            {practitioners.map((p) => (
              <option value={p.id} key={p.id}>
                {p.name} (Practitioner/{p.id})
              </option>
            ))}
          </select>
          <button type="submit" disabled={busy}>
            Sign in
          </button>
        </form>
      )}
    </section>
  );
}
