import { describe, expect, it } from 'vitest';

import { DEFAULT_SETTINGS, readSettings } from '../labextension/settings';
import schema from '../../schema/run-browser.json';

describe('run browser settings', () => {
  it('takes the values of the right type and defaults the rest', () => {
    expect(readSettings({ rowHeight: 60, socketLimit: '8', kernelName: 'julia' })).toEqual({
      ...DEFAULT_SETTINGS,
      rowHeight: 60,
      kernelName: 'julia'
    });
  });

  it('has the defaults of schema/run-browser.json', () => {
    const defaults = Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, v.default]));
    expect(defaults).toEqual(DEFAULT_SETTINGS);
  });
});
