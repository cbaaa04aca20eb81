// Package deploy holds no code: it is the home of the deployment files that
// ECB ships (nginx/, haproxy/, systemd/, docker/, kubernetes/) and of the
// test that keeps them true to ECB (setting names, drain timings, probe
// paths, the static build). nginx and HAProxy are run for real by
// internal/lbtest; the other files are only parsed and checked here.
package deploy
