// Django's JavaScript catalog (loaded by base.html as a classic script, so it is there before any
// module runs) translates every string a rater sees; without it the page stays in English.

const fallbackInterpolate = (fmt, obj, named) =>
  named ? fmt.replace(/%\((\w+)\)s/g, (_, k) => String(obj[k])) : fmt.replace(/%s/g, () => String(obj.shift()));

export const gettext = window.gettext ?? ((s) => s);
export const ngettext = window.ngettext ?? ((one, many, n) => (n === 1 ? one : many));
export const interpolate = window.interpolate ?? fallbackInterpolate;

// "%(n)s points" with named values.
export const format = (fmt, values) => interpolate(fmt, values, true);
