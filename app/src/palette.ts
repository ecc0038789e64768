/**
 * Okabe & Ito's palette, distinguishable with the common colour-vision deficiencies; every chart also
 * tells its series apart by shape, dash or position, never by colour alone.
 */
export const COLORS = {
  blue: '#0072B2',
  sky: '#56B4E9',
  green: '#009E73',
  orange: '#E69F00',
  vermillion: '#D55E00',
  purple: '#CC79A7',
  yellow: '#F0E442',
  grey: '#767676',
  black: '#000000',
};
