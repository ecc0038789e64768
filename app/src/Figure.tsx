import { useEffect, useRef, useState } from 'preact/hooks';

type Charts = typeof import('./charts');

let loading: Promise<Charts> | undefined;

/** Starts fetching the chart module (the worklist does, once it is shown, so a patient opens at once). */
export function prefetchCharts(): void {
  loading ??= import('./charts');
}

/** The chart module, fetched the first time a view needs it. */
export function useCharts(): Charts | undefined {
  const [charts, setCharts] = useState<Charts | undefined>();
  useEffect(() => {
    prefetchCharts();
    if (!loading) return;
    let live = true;
    loading.then((c) => live && setCharts(() => c));
    return () => {
      live = false;
    };
  }, []);
  return charts;
}

/** Mounts a chart Plot made (an SVG element) where Preact renders this figure. */
export function Figure({ node, caption, id }: { node: Element | undefined; caption: string; id?: string }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const host = ref.current;
    if (!host) return;
    host.replaceChildren(...(node ? [node] : []));
  }, [node]);
  return (
    <figure class="chart" id={id}>
      <div ref={ref} class="chart-body">
        {node ? null : <p class="loading">Loading chart…</p>}
      </div>
      <figcaption>{caption}</figcaption>
    </figure>
  );
}

/** The width charts are drawn at: the content column's. */
export function useWidth(): number {
  const [width, setWidth] = useState(() => Math.min(1100, Math.max(600, document.body.clientWidth - 48)));
  useEffect(() => {
    const update = () => setWidth(Math.min(1100, Math.max(600, document.body.clientWidth - 48)));
    addEventListener('resize', update);
    return () => removeEventListener('resize', update);
  }, []);
  return width;
}
