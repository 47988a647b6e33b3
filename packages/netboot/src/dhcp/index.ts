export * from './constants.js';
export * from './errors.js';
export * from './header.js';
export * from './options.js';
export * from './pxe-options.js';
export * from './message.js';
