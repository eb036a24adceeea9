/** A page the browser ended on. */
export interface Visit {
  status: number;
  url: string;
  text: string;
  /** Every URL it went through, the first one included. */
  hops: string[];
}

/**
 * A minimal browser: GET with redirects followed by hand and cookies kept per host (name and
 * value only, which is all Elevate and the local provider need). Each instance is one person's browser.
 */
export function createBrowser() {
  const jar = new Map<string, Map<string, string>>();
  const cookiesFor = (url: URL) => {
    const known = jar.get(url.host);
    if (known) return known;
    const fresh = new Map<string, string>();
    jar.set(url.host, fresh);
    return fresh;
  };

  return {
    /** Follows redirects from `start`; `until` stops before a URL (the page it would load is not fetched). */
    async visit(start: string, until?: (url: URL) => boolean): Promise<Visit> {
      let url = new URL(start);
      const hops = [url.href];
      for (let i = 0; i < 20; i++) {
        const cookies = cookiesFor(url);
        const res = await fetch(url, {
          redirect: 'manual',
          headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
        });
        for (const line of res.headers.getSetCookie()) {
          const [pair] = line.split(';');
          const at = pair?.indexOf('=') ?? -1;
          if (!pair || at < 1) continue;
          const name = pair.slice(0, at).trim();
          const value = pair.slice(at + 1).trim();
          if (value === '' || /max-age=0|expires=thu, 01 jan 1970/i.test(line)) cookies.delete(name);
          else cookies.set(name, value);
        }
        const location = res.headers.get('location');
        if (res.status >= 300 && res.status < 400 && location) {
          await res.arrayBuffer();
          url = new URL(location, url);
          hops.push(url.href);
          if (until?.(url)) return { status: res.status, url: url.href, text: '', hops };
          continue;
        }
        return { status: res.status, url: url.href, text: await res.text(), hops };
      }
      throw new Error(`too many redirects from ${start}`);
    },
  };
}

/** The one sentence of an Elevate page, unescaped. */
export function sentenceOf(html: string): string {
  const match = /<p>([\s\S]*?)<\/p>/.exec(html);
  return (match?.[1] ?? html)
    .replace(/&#(\d+);/g, (_m, code: string) => String.fromCharCode(Number(code)))
    .trim();
}
