import { mount } from 'svelte';
import App from './App.svelte';
import { api, connected } from './lib/api';
import { LibraryState } from './library/library-state.svelte';
import './app.css';

// User Timing marks of the first start (bench/index-scale.ts reads them): here the app's chunk is
// fetched, compiled and its modules evaluated; 'mounted' once the shell is built.
performance.mark('ctssl-library:script');

// The Library's state starts, and so asks for its first rows, before the app is mounted, and the
// mount waits (at most 100 ms) for the socket to open, so that the server reads the rows while the
// page builds itself: otherwise the mount's long task, then the socket's opening, then the query
// ran one after another (bench/index-scale.ts: first rows at a million instances).
const library = new LibraryState(api);
library.start();

const app = connected(100).then(() => {
  const mounted = mount(App, { target: document.getElementById('app')!, props: { library } });
  performance.mark('ctssl-library:mounted');
  return mounted;
});

export default app;
