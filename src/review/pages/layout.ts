import { html, type Html } from './html.js';

export interface PageContext {
  title: string;
  csrf: string;
  /** Who is signed in, as shown in the header. */
  user: string | undefined;
  /** The signed-in Practitioner reference: the page keeps unsaved edits per user (not a secret). */
  userId?: string | undefined;
  /** Set when no sign-in is configured: said on every page. */
  localNotice: string | undefined;
  canSign: boolean;
}

export function layout(ctx: PageContext, body: Html): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="${ctx.csrf}">
<title>${ctx.title} — raddraft</title>
<link rel="stylesheet" href="/review/static/review.css">
<script src="/review/static/review.js" defer></script>
</head>
<body data-user="${ctx.userId ?? ''}">
<header class="top">
  <a class="brand" href="/review" accesskey="w">raddraft <span>AI draft review</span></a>
  <nav><a href="/review">Worklist</a> <a href="/review/quality">Quality</a></nav>
  <span class="user">${ctx.user ?? 'read-only'}</span>
  ${ctx.csrf ? html`<button type="button" id="sign-out" class="sign-out">Sign out</button>` : ''}
</header>
${ctx.localNotice ? html`<p class="notice" role="status">${ctx.localNotice}</p>` : ''}
<main>
${body}
</main>
</body>
</html>`;
}
