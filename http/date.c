/*
 * HTTP dates (RFC 9110, section 5.6.7): IMF-fixdate out, the three formats
 * in. By hand rather than strftime()/strptime(), whose names of days and
 * months follow the locale.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http/http.h"

static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char months[12][4] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
};

void
http_date(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year < 0) {
		snprintf(buf, len, "Thu, 01 Jan 1970 00:00:00 GMT");
		return;
	}
	snprintf(buf, len, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
	    months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int
month(const char *s)
{
	for (int i = 0; i < 12; i++)
		if (strcmp(s, months[i]) == 0)
			return i;
	return -1;
}

int
http_date_parse(const char *s, time_t *out)
{
	char wd[10], mon[4];
	int d, y, hh, mm, ss, n = 0;
	struct tm tm = { 0 };
	time_t t;

	/* Sun, 06 Nov 1994 08:49:37 GMT */
	if (sscanf(s, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n",
	    wd, &d, mon, &y, &hh, &mm, &ss, &n) == 7 && n > 0 && s[n] == '\0')
		;
	/* Sunday, 06-Nov-94 08:49:37 GMT: a two-digit year is 1970 to 2069 */
	else if ((n = 0, sscanf(s, "%9[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d GMT%n",
	    wd, &d, mon, &y, &hh, &mm, &ss, &n) == 7) && n > 0 && s[n] == '\0')
		y += y < 70 ? 2000 : 1900;
	/* Sun Nov  6 08:49:37 1994 (asctime) */
	else if ((n = 0, sscanf(s, "%3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n",
	    wd, mon, &d, &hh, &mm, &ss, &y, &n) == 7) && n > 0 && s[n] == '\0')
		;
	else
		return -1;
	if ((tm.tm_mon = month(mon)) < 0 || d < 1 || d > 31 || y < 1970 || hh > 23 || mm > 59 ||
	    ss > 60 || hh < 0 || mm < 0 || ss < 0)
		return -1;
	tm.tm_mday = d;
	tm.tm_year = y - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	*out = t;
	return 0;
}
