import { render } from 'preact';
import { setUnauthorizedHandler } from './api';
import { App } from './app';
import { endSessionOn401 } from './session';
import './styles.css';

// Any call the core answers 401 (session expired, signed out elsewhere) ends this tab's session.
setUnauthorizedHandler(endSessionOn401);
const root = document.getElementById('app');
if (root) render(<App />, root);
