import { useEffect, useState } from 'preact/hooks';

/** Hash routes, so the server serves one page for all of them: #/, #/patient/<id>?date=…, #/program?date=… */
export interface Route {
  view: 'worklist' | 'patient' | 'program';
  id?: string;
  params: URLSearchParams;
}

export function parseRoute(hash: string): Route {
  const [path, query = ''] = hash.replace(/^#/, '').split('?');
  const params = new URLSearchParams(query);
  const parts = path.split('/').filter(Boolean);
  if (parts[0] === 'patient' && parts[1]) return { view: 'patient', id: decodeURIComponent(parts[1]), params };
  if (parts[0] === 'program') return { view: 'program', params };
  return { view: 'worklist', params };
}

export function href(view: Route['view'], id?: string, params: Record<string, string | undefined> = {}): string {
  const query = new URLSearchParams(
    Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined),
  ).toString();
  const path = view === 'patient' ? `/patient/${encodeURIComponent(id ?? '')}` : view === 'program' ? '/program' : '/';
  return `#${path}${query ? `?${query}` : ''}`;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const update = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', update);
    return () => removeEventListener('hashchange', update);
  }, []);
  return route;
}
