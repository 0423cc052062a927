package dashboard

import (
	"encoding/base64"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// theme is how the platform that embeds the portal asked it to look, with
// the query parameters svix-react's <AppPortal> adds to the portal link:
// primaryColor, darkMode, fontFamily and icon. Every field has been
// validated (parseTheme): it may go into a stylesheet, an attribute and the
// Content-Security-Policy as it is.
type theme struct {
	Color string // "#rrggbb", lower-case; "" = the default accent
	Dark  string // "true" (always dark), "auto" (the viewer's preference) or ""
	Font  string // font family names, comma-separated, from fontChars
	Icon  string // an absolute http(s) URL of the icon shown in the header
}

// themeParams are the query parameters of a theme.
var themeParams = []string{"primaryColor", "darkMode", "fontFamily", "icon"}

var (
	hexColor  = regexp.MustCompile(`^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)
	fontChars = regexp.MustCompile(`^[A-Za-z0-9 ,_-]{1,100}$`)
	hostChars = regexp.MustCompile(`^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`)
)

// maxIconURL bounds the icon URL, which is kept in a cookie.
const maxIconURL = 1024

// hasTheme reports whether q names any theme parameter.
func hasTheme(q url.Values) bool {
	for _, p := range themeParams {
		if q.Has(p) {
			return true
		}
	}
	return false
}

// parseTheme reads a theme from query parameters. A value that is not
// valid is dropped, not refused: the rest of the theme, and the portal,
// still work.
func parseTheme(q url.Values) theme {
	var t theme
	if m := hexColor.FindStringSubmatch(q.Get("primaryColor")); m != nil {
		c := strings.ToLower(m[1])
		if len(c) == 3 {
			c = string([]byte{c[0], c[0], c[1], c[1], c[2], c[2]})
		}
		t.Color = "#" + c
	}
	switch d := strings.ToLower(q.Get("darkMode")); d {
	case "true", "auto":
		t.Dark = d
	}
	if f := strings.TrimSpace(q.Get("fontFamily")); fontChars.MatchString(f) {
		t.Font = f
	}
	t.Icon = validIcon(q.Get("icon"))
	return t
}

// validIcon returns raw if it is an absolute http or https URL whose
// origin can stand in a Content-Security-Policy, else "".
func validIcon(raw string) string {
	if raw == "" || len(raw) > maxIconURL || strings.ContainsAny(raw, " \t\r\n\"'<>\\;,") {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || !hostChars.MatchString(u.Host) {
		return ""
	}
	return u.String()
}

// origin is the icon's origin, the source the CSP's img-src must allow.
func (t theme) origin() string {
	if t.Icon == "" {
		return ""
	}
	u, err := url.Parse(t.Icon)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// values encodes the theme as the query parameters it was read from.
func (t theme) values() url.Values {
	q := url.Values{}
	if t.Color != "" {
		q.Set("primaryColor", t.Color)
	}
	if t.Dark != "" {
		q.Set("darkMode", t.Dark)
	}
	if t.Font != "" {
		q.Set("fontFamily", t.Font)
	}
	if t.Icon != "" {
		q.Set("icon", t.Icon)
	}
	return q
}

// stylesheet returns the query of the theme's stylesheet, "" when the
// theme changes nothing in it (the icon is in the page).
func (t theme) stylesheet() string {
	q := t.values()
	q.Del("icon")
	return q.Encode()
}

// darkPalette are the colours of dark mode, replacing those of style.css.
const darkPalette = `--fg: #e4e7ec; --muted: #a3adbb; --bg: #12161d; --card: #1b212b; --line: #313a47;
  --accent: #7aa2ff; --accent-fg: #0b0e13; --ok: #6fd9a0; --ok-bg: #113422; --fail: #ff9b8f; --fail-bg: #3f1a16;
  --pending: #f3c56f; --pending-bg: #3a2d10; --off: #b8c0cc; --off-bg: #2a313c; --top-bg: #0b0e13; --top-fg: #fff;
  --field-bg: #141a22; --field-line: #465164; --hover: #252d39; --code-bg: #151b24;
  color-scheme: dark;`

// css is the theme's stylesheet: it follows style.css and overrides its
// custom properties. Its values are validated, so nothing in it can close
// a declaration or a rule.
func (t theme) css() string {
	var b strings.Builder
	b.WriteString("/* the portal's theme, from the link's parameters */\n")
	switch t.Dark {
	case "true":
		fmt.Fprintf(&b, ":root {\n  %s\n}\n", darkPalette)
	case "auto":
		fmt.Fprintf(&b, "@media (prefers-color-scheme: dark) {\n:root {\n  %s\n}\n}\n", darkPalette)
	}
	if t.Color != "" {
		fmt.Fprintf(&b, ":root { --accent: %s; --accent-fg: %s; }\n", t.Color, contrastOn(t.Color))
	}
	if t.Font != "" {
		var names []string
		for _, n := range strings.Split(t.Font, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, strconv.Quote(n))
			}
		}
		if len(names) > 0 {
			fmt.Fprintf(&b, ":root { font-family: %s, system-ui, -apple-system, \"Segoe UI\", Roboto, sans-serif; }\n", strings.Join(names, ", "))
		}
	}
	return b.String()
}

// contrastOn returns black or white, whichever reads better on the colour
// "#rrggbb" (WCAG relative luminance).
func contrastOn(color string) string {
	lin := func(hex string) float64 {
		v, _ := strconv.ParseUint(hex, 16, 8)
		c := float64(v) / 255
		if c <= 0.03928 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	l := 0.2126*lin(color[1:3]) + 0.7152*lin(color[3:5]) + 0.0722*lin(color[5:7])
	// Contrast with white is 1.05/(l+0.05), with black (l+0.05)/0.05.
	if 1.05/(l+0.05) >= (l+0.05)/0.05 {
		return "#fff"
	}
	return "#000"
}

// themeCookie keeps the portal's theme for the session, so that every page
// keeps the look the link asked for (base64url of the validated query).
const themeCookie = "hookstep_portal_theme"

// portalTheme returns the theme of a portal request: the one its query
// asks for, which is then kept in the theme cookie, or the kept one. The
// link's landing page (landing) always replaces the kept theme, so that a
// new link without parameters starts with the default look.
func (h *handler) portalTheme(w http.ResponseWriter, r *http.Request, landing bool) theme {
	q := r.URL.Query()
	if landing || hasTheme(q) {
		t := parseTheme(q)
		if enc := t.values().Encode(); enc != "" {
			h.setCookie(w, r, themeCookie, base64.RawURLEncoding.EncodeToString([]byte(enc)), 0)
		} else if _, err := r.Cookie(themeCookie); err == nil {
			h.setCookie(w, r, themeCookie, "", -1)
		}
		return t
	}
	c, err := r.Cookie(themeCookie)
	if err != nil {
		return theme{}
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return theme{}
	}
	kept, err := url.ParseQuery(string(b))
	if err != nil {
		return theme{}
	}
	return parseTheme(kept) // validated again: a cookie can be written by others
}

// themeStylesheet serves the theme of the query as CSS. It needs no
// session: it shows nothing but its validated parameters.
func (h *handler) themeStylesheet(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, err := w.Write([]byte(parseTheme(r.URL.Query()).css()))
	return err
}
