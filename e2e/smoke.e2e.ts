import { test, expect, screenshotDir } from './fixtures';
import { join } from 'node:path';

test('the app loads in Chromium through ctssl serve and talks to the services', async ({ app }) => {
  await expect(app.getByTestId('app-version')).toContainText('(server)');
  await app.screenshot({ path: join(screenshotDir, 'smoke.png') });
});

test('the API refuses a connection without the token', async ({ page, served }) => {
  await page.goto(served.url);
  const result = await page.evaluate(
    (url) =>
      new Promise<string>((res) => {
        const ws = new WebSocket(url.replace('http', 'ws') + 'api?token=wrong');
        ws.onopen = () => res('open');
        ws.onerror = () => res('refused');
      }),
    served.url,
  );
  expect(result).toBe('refused');
});
