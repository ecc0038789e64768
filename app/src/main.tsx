import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { completeSmartLaunch, loadAppConfig, type AppConfig } from './auth';
import { currentSession, setSession, type Session } from './fhir';
import { href, useRoute } from './route';
import { PatientView } from './views/Patient';
import { Program } from './views/Program';
import { SignIn } from './views/SignIn';
import { Worklist } from './views/Worklist';

function App() {
  const [config, setConfig] = useState<AppConfig | undefined>();
  const [session, setLocalSession] = useState<Session | undefined>(currentSession());
  const [problem, setProblem] = useState<string | undefined>();
  const route = useRoute();

  useEffect(() => {
    loadAppConfig()
      .then(async (c) => {
        setConfig(c);
        if (c.signIn === 'smart') {
          const s = await completeSmartLaunch(c);
          if (s) setLocalSession(s);
        }
      })
      .catch((e: Error) => setProblem(e.message));
  }, []);

  // Move focus to the new view's heading, so keyboard and screen-reader users land on what changed.
  useEffect(() => {
    const heading = document.querySelector<HTMLElement>('main h1');
    heading?.setAttribute('tabindex', '-1');
    heading?.focus({ preventScroll: true });
  }, [route.view, route.id, session]);

  if (!config) {
    return problem ? (
      <p role="alert" class="error">
        {problem}
      </p>
    ) : (
      <p class="loading">Loading…</p>
    );
  }
  const date = route.params.get('date') ?? undefined;
  const signOut = () => {
    setSession(undefined);
    setLocalSession(undefined);
  };

  return (
    <>
      <a
        class="skip"
        href="#main"
        onClick={(e) => {
          e.preventDefault();
          document.getElementById('main')?.focus();
        }}
      >
        Skip to content
      </a>
      <header class="top">
        <span class="brand">meds-fhir</span>
        {session ? (
          <nav aria-label="Views">
            <a
              href={href('worklist', undefined, { date })}
              aria-current={route.view === 'worklist' ? 'page' : undefined}
            >
              Worklist
            </a>
            <a href={href('program', undefined, { date })} aria-current={route.view === 'program' ? 'page' : undefined}>
              Program
            </a>
          </nav>
        ) : null}
        {session ? (
          <span class="user">
            {session.name}{' '}
            <button type="button" onClick={signOut}>
              Sign out
            </button>
          </span>
        ) : null}
      </header>
      <main id="main" tabIndex={-1}>
        {!session ? (
          <SignIn config={config} onSignedIn={setLocalSession} problem={problem} />
        ) : route.view === 'patient' && route.id ? (
          <PatientView id={route.id} params={route.params} />
        ) : route.view === 'program' ? (
          <Program params={route.params} />
        ) : (
          <Worklist date={date} />
        )}
      </main>
    </>
  );
}

const root = document.getElementById('root');
if (root) {
  root.replaceChildren();
  render(<App />, root);
}
