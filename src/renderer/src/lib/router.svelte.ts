/** The current route, kept in step with the location hash. */
import { parseHash, routeHash, type Route } from './routes';

class Router {
  route = $state<Route>(parseHash(location.hash));
  /** The last series the viewer showed, so that the Viewer tab returns to it. */
  lastSeriesId = $state<number | null>(null);

  constructor() {
    window.addEventListener('hashchange', () => {
      this.route = parseHash(location.hash);
      if (this.route.seriesId !== undefined) this.lastSeriesId = this.route.seriesId;
    });
    if (this.route.seriesId !== undefined) this.lastSeriesId = this.route.seriesId;
  }

  go(r: Route): void {
    if (r.seriesId !== undefined) this.lastSeriesId = r.seriesId;
    const hash = routeHash(r);
    if (location.hash !== hash) location.hash = hash;
    this.route = r;
  }

  openSeries(seriesId: number): void {
    this.go({ page: 'viewer', seriesId });
  }
}

export const router = new Router();
