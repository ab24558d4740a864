package notify

import (
	"net/url"
	"strings"

	"pbxha/lib/config"
)

// Link is the host's or service's page in Icinga Web 2 when
// [notify] icingaweb2_url is set, in the form Icinga's own mail scripts
// use (Icinga DB Web redirects these monitoring-module URLs too); "" when
// it is not.
func Link(cfg *config.Config, n Notification) string {
	base := strings.TrimRight(cfg.Notify.IcingaWeb2URL, "/")
	if base == "" {
		return ""
	}
	q := url.Values{"host": {n.Host}}
	if n.Kind == "host" {
		return base + "/monitoring/host/show?" + q.Encode()
	}
	q.Set("service", n.Service)
	return base + "/monitoring/service/show?" + q.Encode()
}
