# The ArGen-style principle pack: every principle adds messages to `deny`
# ({principle, msg, severity}); `allow` and `veto` summarise them.
package argen

import rego.v1

# true when no principle is violated
allow if count(deny) == 0

# the violations severe enough to reject a completion outright
veto contains v.msg if {
	some v in deny
	v.severity == "critical"
}

# the principles violated, for reports
violated contains v.principle if some v in deny
