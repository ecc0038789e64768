import * as Plot from '@observablehq/plot';
import { addDays, toDate } from '../dates';
import { COLORS } from '../palette';

/**
 * The page's charts, all drawn by Observable Plot; this module is loaded on demand (the worklist needs
 * none of it). Plot adds a <style> element to each chart, which the page's CSP (no inline styles) would
 * refuse: it is removed before the chart is attached, and its rules are in styles.css (.mf-plot).
 * Each chart is an image with a label and description; the numbers it draws are also in the page's text.
 */

const CLASS_NAME = 'mf-plot';

function finish(node: SVGSVGElement | HTMLElement): Element {
  node.querySelectorAll('style').forEach((s) => s.remove());
  // Plot names each mark's <g> with aria-label; a label needs a role to be allowed (axe: aria-prohibited-attr).
  node.querySelectorAll('g[aria-label]').forEach((g) => g.setAttribute('role', 'group'));
  // An image to assistive technology, unless it holds links (the program's bars), which must stay reachable.
  if (!node.querySelector('a')) node.setAttribute('role', 'img');
  return node;
}

const end = (day: string) => toDate(addDays(day, 1));

/** Lane names fit the left margin; the full name is in the marks' titles and the page's tables. */
const shorten = (name: string) => (name.length > 30 ? `${name.slice(0, 29)}…` : name);

export interface TimelineData {
  from: string;
  to: string;
  date: string;
  lanes: string[];
  prescriptions: { lane: string; start: string; end: string; label: string; reference: string }[];
  fills: {
    lane: string;
    start: string;
    end: string;
    fillDate: string;
    shifted: boolean;
    tracked: boolean;
    label: string;
    reference: string;
  }[];
  gaps: { lane: string; start: string; end: string; days: number }[];
  missed: { lane: string; date: string; label: string; reference: string }[];
  highlighted: Set<string>;
  width: number;
}

export function timeline(d: TimelineData): Element {
  const lit = (r: { reference: string }) => d.highlighted.has(r.reference);
  const x = { x1: (r: { start: string }) => toDate(r.start), x2: (r: { end: string }) => end(r.end), y: 'lane' };
  return finish(
    Plot.plot({
      className: CLASS_NAME,
      width: d.width,
      height: 46 * d.lanes.length + 50,
      marginLeft: 190,
      marginRight: 20,
      ariaLabel: 'Medication timeline',
      ariaDescription:
        'One lane per medication class: prescriptions as thin grey lines, fills as bars as long as their days supply (shifted fills start after the previous supply runs out), gaps outlined in dashes, missed doses as crosses, the review date as a vertical line.',
      x: { type: 'utc', domain: [toDate(d.from), end(d.to)], label: null, grid: true },
      y: { domain: d.lanes, label: null, tickSize: 0, tickFormat: shorten },
      marks: [
        Plot.ruleY(d.prescriptions, {
          ...x,
          dy: -14,
          stroke: (r) => (lit(r) ? COLORS.black : COLORS.grey),
          strokeWidth: (r) => (lit(r) ? 5 : 3),
          title: (r) => `Prescription: ${r.label}\n${r.start} – ${r.end}`,
          className: 'prescription',
        }),
        Plot.barX(d.fills, {
          ...x,
          insetTop: 12,
          insetBottom: 12,
          fill: (r) => (!r.tracked ? COLORS.purple : r.shifted ? COLORS.sky : COLORS.blue),
          stroke: (r) => (lit(r) ? COLORS.black : 'white'),
          strokeWidth: (r) => (lit(r) ? 3 : 1),
          title: (r) =>
            `${r.label}\nfilled ${r.fillDate}${r.shifted ? `, shifted to start ${r.start}` : ''}\ncovers ${r.start} – ${r.end}`,
          className: 'fill',
        }),
        Plot.tickX(
          d.fills.filter((f) => f.shifted),
          {
            x: (r) => toDate(r.fillDate),
            y: 'lane',
            stroke: COLORS.black,
            strokeWidth: 1.5,
            insetTop: 8,
            insetBottom: 8,
          },
        ),
        Plot.barX(d.gaps, {
          ...x,
          insetTop: 9,
          insetBottom: 9,
          fill: COLORS.vermillion,
          fillOpacity: 0.15,
          stroke: COLORS.vermillion,
          strokeWidth: 2,
          strokeDasharray: '4,2',
          title: (r) => `Gap: ${r.start} – ${r.end} (${r.days} days without supply)`,
          className: 'gap',
        }),
        Plot.dot(d.missed, {
          x: (r) => toDate(r.date),
          y: 'lane',
          symbol: 'times',
          r: 6,
          stroke: (r) => (lit(r) ? COLORS.black : COLORS.vermillion),
          strokeWidth: 2.5,
          title: (r) => `Missed doses ${r.date}: ${r.label}`,
          className: 'missed-dose',
        }),
        Plot.ruleX([toDate(d.date)], { stroke: COLORS.black, strokeWidth: 1.5, strokeDasharray: '6,3' }),
        Plot.text([toDate(d.date)], {
          x: (v) => v,
          frameAnchor: 'top',
          dy: -2,
          text: () => 'review date',
          fontSize: 11,
        }),
      ],
    }),
  );
}

export function pdcBars(rows: { title: string; pdc: number; adherent: boolean }[], width: number): Element {
  return finish(
    Plot.plot({
      className: CLASS_NAME,
      width,
      height: 36 * rows.length + 50,
      marginLeft: 190,
      ariaLabel: 'PDC per medication class',
      ariaDescription: 'Proportion of days covered per class with the 80% threshold as a dashed line.',
      x: { domain: [0, 100], percent: true, label: 'PDC (%)', grid: true },
      y: { domain: rows.map((r) => r.title), label: null, tickFormat: shorten },
      marks: [
        Plot.barX(rows, {
          x: 'pdc',
          y: 'title',
          fill: (r) => (r.adherent ? COLORS.blue : COLORS.orange),
          insetTop: 6,
          insetBottom: 6,
          title: (r) => `${r.title}: ${(r.pdc * 100).toFixed(2)}%`,
        }),
        Plot.ruleX([0.8], { stroke: COLORS.black, strokeDasharray: '5,3', strokeWidth: 1.5 }),
        Plot.text(rows, {
          x: 'pdc',
          y: 'title',
          text: (r) => `${(r.pdc * 100).toFixed(2)}%${r.adherent ? '' : ' below 80%'}`,
          textAnchor: 'start',
          dx: 4,
        }),
      ],
    }),
  );
}

export function screens(
  rows: { date: string; analyte: string; result: 'positive' | 'negative' | 'other'; text: string }[],
  from: string,
  to: string,
  width: number,
): Element {
  const analytes = [...new Set(rows.map((r) => r.analyte))];
  return finish(
    Plot.plot({
      className: CLASS_NAME,
      width,
      height: 34 * analytes.length + 60,
      marginLeft: 190,
      ariaLabel: 'Drug screens over time',
      x: { type: 'utc', domain: [toDate(from), end(to)], label: null, grid: true },
      y: { domain: analytes, label: null, tickFormat: shorten },
      symbol: { domain: ['positive', 'negative', 'other'], range: ['triangle', 'circle', 'square'], legend: false },
      color: { domain: ['positive', 'negative', 'other'], range: [COLORS.vermillion, COLORS.blue, COLORS.grey] },
      marks: [
        Plot.dot(rows, {
          x: (r) => toDate(r.date),
          y: 'analyte',
          symbol: 'result',
          fill: 'result',
          r: 6,
          title: (r) => `${r.date} ${r.analyte}: ${r.text}`,
        }),
      ],
    }),
  );
}

const PHQ_BANDS = [
  { from: 0, to: 4, label: 'minimal' },
  { from: 5, to: 9, label: 'mild' },
  { from: 10, to: 14, label: 'moderate' },
  { from: 15, to: 19, label: 'moderately severe' },
  { from: 20, to: 27, label: 'severe' },
];

export function phq9(rows: { date: string; score: number }[], from: string, to: string, width: number): Element {
  const shades = ['#f2f2f2', '#e3eef7', '#fbe8d2', '#f6d3bf', '#efb9a0'];
  return finish(
    Plot.plot({
      className: CLASS_NAME,
      width,
      height: 240,
      marginLeft: 190,
      ariaLabel: 'PHQ-9 scores over time with severity bands',
      x: { type: 'utc', domain: [toDate(from), end(to)], label: null },
      y: { domain: [0, 27], label: 'PHQ-9', ticks: [0, 5, 10, 15, 20, 27] },
      marks: [
        Plot.rectY(PHQ_BANDS, {
          y1: 'from',
          y2: (b) => b.to + 1,
          fill: (_b, i) => shades[i],
          x1: toDate(from),
          x2: end(to),
        }),
        Plot.text(PHQ_BANDS, {
          y: (b) => (b.from + b.to + 1) / 2,
          text: 'label',
          frameAnchor: 'left',
          dx: -185,
          textAnchor: 'start',
          fill: '#333',
        }),
        Plot.line(rows, { x: (r) => toDate(r.date), y: 'score', stroke: COLORS.blue, strokeWidth: 2 }),
        Plot.dot(rows, {
          x: (r) => toDate(r.date),
          y: 'score',
          fill: COLORS.blue,
          r: 4,
          title: (r) => `${r.date}: ${r.score}`,
        }),
      ],
    }),
  );
}

export function mmeSeries(rows: { date: string; mme: number }[], from: string, to: string, width: number): Element {
  return finish(
    Plot.plot({
      className: CLASS_NAME,
      width,
      height: 220,
      marginLeft: 190,
      ariaLabel: 'Daily morphine milligram equivalents over time',
      ariaDescription: 'Dashed lines at 50 and 90 MME per day (CDC 2022).',
      x: { type: 'utc', domain: [toDate(from), end(to)], label: null },
      y: { label: 'MME/day', grid: true, domain: [0, Math.max(100, ...rows.map((r) => r.mme)) * 1.05] },
      marks: [
        Plot.areaY(rows, {
          x: (r) => toDate(r.date),
          y: 'mme',
          fill: COLORS.orange,
          fillOpacity: 0.35,
          curve: 'step-after',
        }),
        Plot.lineY(rows, {
          x: (r) => toDate(r.date),
          y: 'mme',
          stroke: COLORS.orange,
          strokeWidth: 2,
          curve: 'step-after',
        }),
        Plot.ruleY([50, 90], { stroke: COLORS.black, strokeDasharray: '5,3' }),
        Plot.text([50, 90], { y: (v) => v, text: (v) => `${v} MME`, frameAnchor: 'right', dy: -6, textAnchor: 'end' }),
      ],
    }),
  );
}

export interface MeasureBar {
  measure: string;
  group: string;
  rate: number;
  numerator?: number;
  denominator?: number;
  href: string;
}

export function measureBars(rows: MeasureBar[], width: number, label: string): Element {
  const svg = Plot.plot({
    className: CLASS_NAME,
    width,
    height: 30 * rows.length + 50,
    marginLeft: 230,
    ariaLabel: label,
    x: { domain: [0, 100], percent: true, label: 'rate (%)', grid: true },
    y: { domain: rows.map((r) => r.group), label: null, tickFormat: shorten },
    marks: [
      Plot.barX(rows, {
        x: 'rate',
        y: 'group',
        fill: COLORS.blue,
        insetTop: 5,
        insetBottom: 5,
        href: 'href',
        className: 'rate',
        title: (r) =>
          `${r.group}: ${(r.rate * 100).toFixed(1)}%${r.denominator !== undefined ? ` (${r.numerator}/${r.denominator})` : ''}`,
      }),
      Plot.text(rows, {
        x: 'rate',
        y: 'group',
        text: (r) =>
          `${(r.rate * 100).toFixed(1)}%${r.denominator !== undefined ? ` (${r.numerator}/${r.denominator})` : ''}`,
        textAnchor: 'start',
        dx: 4,
      }),
    ],
  }) as SVGSVGElement;
  return finish(svg);
}
