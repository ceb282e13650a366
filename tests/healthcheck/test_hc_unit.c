/*
 * Unit tests of the health agent's pure parts: the endpoint state machine,
 * the quorum, DNS plans (policy, fail open, drain), the PowerDNS LUA record,
 * AWS SigV4 against AWS's published examples, and the Route 53 request body
 * against a golden file.
 */
#include "hc_dns.h"
#include "hc_fsm.h"
#include "hc_quorum.h"
#include "hc_sigv4.h"
#include "mr_buf.h"
#include "mr_regions.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE(name) MERIDIAN_HC_TEST_DIR "/fixtures/" name

/* ---------- state machine ---------- */

static hc_fsm fresh_up(void)
{
    hc_fsm_conf c = HC_FSM_CONF_DEFAULT;
    hc_fsm f;
    hc_fsm_init(&f, &c);
    ck_assert(hc_fsm_feed(&f, true, 1));
    ck_assert_int_eq(f.state, HC_STATE_UP);
    return f;
}

START_TEST(fsm_blip_does_not_flip)
{
    hc_fsm f = fresh_up();
    /* One lost probe now and then, spaced wider than the window: stays up. */
    for (int i = 0; i < 100; i++)
        ck_assert(!hc_fsm_feed(&f, i % 7 != 0, 10 + i));
    ck_assert_int_eq(f.state, HC_STATE_UP);
}
END_TEST

START_TEST(fsm_intermittent_failures_add_up)
{
    hc_fsm f = fresh_up();
    /* fail, ok, fail, ok, fail: never two in a row, still three in six. */
    bool seq[] = {false, true, false, true};
    for (size_t i = 0; i < 4; i++)
        ck_assert(!hc_fsm_feed(&f, seq[i], 10));
    ck_assert(hc_fsm_feed(&f, false, 20));
    ck_assert_int_eq(f.state, HC_STATE_DOWN);
    ck_assert_int_eq(f.since_ms, 20);
}
END_TEST

START_TEST(fsm_down_after_consecutive_failures)
{
    hc_fsm f = fresh_up();
    ck_assert(!hc_fsm_feed(&f, false, 2));
    ck_assert(!hc_fsm_feed(&f, false, 3));
    ck_assert(hc_fsm_feed(&f, false, 4));
    ck_assert_int_eq(f.state, HC_STATE_DOWN);
}
END_TEST

START_TEST(fsm_comes_back_slower)
{
    hc_fsm f = fresh_up();
    for (int i = 0; i < 3; i++)
        hc_fsm_feed(&f, false, 2);
    ck_assert_int_eq(f.state, HC_STATE_DOWN);
    /* Seven successes and a failure: the streak restarts, no flapping. */
    for (int i = 0; i < 7; i++)
        ck_assert(!hc_fsm_feed(&f, true, 3));
    ck_assert(!hc_fsm_feed(&f, false, 3));
    for (int i = 0; i < 7; i++)
        ck_assert(!hc_fsm_feed(&f, true, 4));
    ck_assert_int_eq(f.state, HC_STATE_DOWN);
    ck_assert(hc_fsm_feed(&f, true, 5));
    ck_assert_int_eq(f.state, HC_STATE_UP);
    /* The failures that took it down do not count again. */
    ck_assert(!hc_fsm_feed(&f, false, 6));
    ck_assert_int_eq(f.state, HC_STATE_UP);
}
END_TEST

START_TEST(fsm_unknown_start)
{
    hc_fsm_conf c = HC_FSM_CONF_DEFAULT;
    hc_fsm f;
    hc_fsm_init(&f, &c);
    ck_assert_int_eq(f.state, HC_STATE_UNKNOWN);
    ck_assert(!hc_fsm_feed(&f, false, 1));
    ck_assert(!hc_fsm_feed(&f, false, 1));
    ck_assert(hc_fsm_feed(&f, false, 1));
    ck_assert_int_eq(f.state, HC_STATE_DOWN);
    char err[64];
    hc_fsm_conf bad = {.down_window = 3, .down_failures = 4, .up_successes = 1};
    ck_assert_int_eq(hc_fsm_conf_check(&bad, err, sizeof err), -1);
    ck_assert_int_eq(hc_fsm_conf_check(&c, err, sizeof err), 0);
}
END_TEST

/* ---------- quorum ---------- */

START_TEST(quorum_majority_of_live_agents)
{
    hc_quorum q;
    hc_quorum_init(&q, 2, 1000);
    hc_state up[2] = {HC_STATE_UP, HC_STATE_UP};
    hc_state down0[2] = {HC_STATE_DOWN, HC_STATE_UP};
    hc_quorum_observe(&q, "a", "eu", false, up, 0, 0);
    hc_quorum_observe(&q, "b", "us", false, up, 0, 0);
    hc_quorum_observe(&q, "c", "ap", false, down0, 0, 0);
    bool ch[2];
    ck_assert(hc_quorum_decide(&q, 10, 10, ch));
    ck_assert_int_eq(q.verdict[0], HC_STATE_UP); /* one dissenter is outvoted */
    ck_assert(hc_quorum_complete(&q));
    /* Two of three see it down: down. */
    hc_quorum_observe(&q, "b", "us", false, down0, 20, 20);
    ck_assert(hc_quorum_decide(&q, 20, 20, ch));
    ck_assert(ch[0] && !ch[1]);
    ck_assert_int_eq(q.verdict[0], HC_STATE_DOWN);
    /* Agent c dies; a and b disagree: no majority, the verdict holds. */
    hc_quorum_observe(&q, "a", "eu", false, up, 900, 900);
    hc_quorum_observe(&q, "b", "us", false, down0, 900, 900);
    ck_assert_uint_eq(hc_quorum_live(&q, 1500), 2);
    ck_assert(!hc_quorum_decide(&q, 1500, 1500, NULL));
    ck_assert_int_eq(q.verdict[0], HC_STATE_DOWN);
    /* Only a is live: it is the majority of itself. */
    hc_quorum_observe(&q, "a", "eu", false, up, 2000, 2000);
    ck_assert_uint_eq(hc_quorum_live(&q, 2500), 1);
    ck_assert(hc_quorum_decide(&q, 2500, 2500, NULL));
    ck_assert_int_eq(q.verdict[0], HC_STATE_UP);
}
END_TEST

START_TEST(quorum_unknown_votes_for_nobody)
{
    hc_quorum q;
    hc_quorum_init(&q, 1, 1000);
    hc_state u[1] = {HC_STATE_UNKNOWN}, up[1] = {HC_STATE_UP};
    hc_quorum_observe(&q, "a", "", false, up, 0, 0);
    hc_quorum_observe(&q, "b", "", false, u, 0, 0);
    hc_quorum_observe(&q, "c", "", false, u, 0, 0);
    hc_quorum_decide(&q, 0, 0, NULL);
    ck_assert_int_eq(q.verdict[0], HC_STATE_UNKNOWN);
    ck_assert(!hc_quorum_complete(&q));
}
END_TEST

/* ---------- DNS plans ---------- */

static mr_regions *load3(void)
{
    char err[512];
    mr_regions *r = mr_regions_load(FIXTURE("regions3.json"), err, sizeof err);
    ck_assert_msg(r != NULL, "%s", err);
    return r;
}

/* Which plan changes are urgent: taking a relay out of every answer is;
 * moving clients back to a region that returned is not (the writer lets
 * such a plan settle so a region whose relays return a round apart comes
 * back in one write). */
START_TEST(plan_drops_relays_leaving_service)
{
    mr_regions *r = load3();
    hc_dns_plan all, eu_down, eu_one;
    bool up[3] = {true, true, true}, down[3] = {false, true, true};
    bool relay_up[4] = {true, false, true, true}; /* eu-west's second relay down */
    hc_dns_plan_build(&all, r, up, NULL);
    hc_dns_plan_build(&eu_down, r, down, NULL);
    hc_dns_plan_build(&eu_one, r, up, relay_up);
    ck_assert(hc_dns_plan_drops(&all, &eu_down));  /* eu-west's relays leave */
    ck_assert(!hc_dns_plan_drops(&eu_down, &all)); /* they come back: not urgent */
    ck_assert(hc_dns_plan_drops(&all, &eu_one));   /* one relay leaves */
    ck_assert(!hc_dns_plan_drops(&eu_down, &eu_one));
    ck_assert(!hc_dns_plan_drops(&eu_one, &all));
    ck_assert(!hc_dns_plan_drops(&all, &all));
    hc_dns_plan_free(&all);
    hc_dns_plan_free(&eu_down);
    hc_dns_plan_free(&eu_one);
    mr_regions_free(r);
}
END_TEST

START_TEST(plan_failover_and_fail_open)
{
    mr_regions *r = load3();
    hc_dns_plan p;
    bool all[3] = {true, true, true};
    hc_dns_plan_build(&p, r, all, NULL);
    ck_assert_str_eq(p.text, "eu-west=127.1.0.1,127.1.0.2 us-east=127.2.0.1 ap-south=127.3.0.1");
    hc_dns_plan_free(&p);

    bool eu_down[3] = {false, true, true};
    hc_dns_plan_build(&p, r, eu_down, NULL);
    ck_assert_str_eq(p.text, "eu-west=127.2.0.1 us-east=127.2.0.1 ap-south=127.3.0.1");
    ck_assert_int_eq(p.route[0], 1);
    hc_dns_plan_free(&p);

    /* ap-south's order is us-east then eu-west. */
    bool only_eu[3] = {true, false, false};
    hc_dns_plan_build(&p, r, only_eu, NULL);
    ck_assert_str_eq(p.text, "eu-west=127.1.0.1,127.1.0.2 us-east=127.1.0.1,127.1.0.2 "
                             "ap-south=127.1.0.1,127.1.0.2");
    hc_dns_plan_free(&p);

    bool none[3] = {false, false, false};
    hc_dns_plan_build(&p, r, none, NULL);
    ck_assert_int_eq(p.route[1], MR_REGIONS_FAIL_OPEN);
    ck_assert_uint_eq(p.n_addrs[1], 4);
    ck_assert_str_eq(p.addrs[2][3], "127.3.0.1");
    hc_dns_plan free_me = p;
    hc_dns_plan copy;
    hc_dns_plan_copy(&copy, &p);
    ck_assert(hc_dns_plan_equal(&copy, &p));
    hc_dns_plan_free(&copy);
    hc_dns_plan_free(&free_me);

    /* A relay that is down leaves its region's answer and its region name;
     * a region whose relays are all down keeps them all under its own name. */
    bool relay_up[4] = {false, true, false, true};
    bool us_down[3] = {true, false, true};
    hc_dns_plan_build(&p, r, us_down, relay_up);
    ck_assert_str_eq(p.own_text, "eu-west.ws.meridian.test.=127.1.0.2 "
                                 "us-east.ws.meridian.test.=127.2.0.1 "
                                 "ap-south.ws.meridian.test.=127.3.0.1");
    hc_dns_plan q;
    hc_dns_plan_build(&q, r, us_down, NULL);
    ck_assert(!hc_dns_plan_equal(&p, &q)); /* same geo answers? no: eu-west-1 is out */
    hc_dns_plan_free(&q);
    hc_dns_plan_free(&p);
    relay_up[2] = true;
    hc_dns_plan_build(&p, r, all, relay_up);
    ck_assert_str_eq(p.text, "eu-west=127.1.0.2 us-east=127.2.0.1 ap-south=127.3.0.1");
    mr_buf j = MR_BUF_INIT;
    hc_dns_plan_json(&p, &j);
    ck_assert_ptr_nonnull(
        strstr(j.data, "\"eu-west\":{\"region\":\"eu-west\",\"addrs\":[\"127.1.0.2\"]}"));
    mr_buf_free(&j);
    hc_dns_plan_free(&p);
    mr_regions_free(r);
}
END_TEST

START_TEST(pdns_lua_record)
{
    mr_regions *r = load3();
    hc_dns_plan p;
    bool eu_down[3] = {false, true, true};
    hc_dns_plan_build(&p, r, eu_down, NULL);
    mr_buf lua = MR_BUF_INIT;
    hc_dns_pdns_lua(&p, &lua);
    ck_assert_str_eq(lua.data, "A \";if netmask({'127.1.0.0/16'}) then return {'127.2.0.1'} end "
                               "if netmask({'127.2.0.0/16'}) then return {'127.2.0.1'} end "
                               "if netmask({'127.3.0.0/16'}) then return {'127.3.0.1'} end "
                               "return {'127.2.0.1'}\"");
    mr_buf_free(&lua);
    hc_dns_plan_free(&p);
    mr_regions_free(r);
}
END_TEST

/* ---------- SigV4: AWS's published examples ---------- */

#define SUITE_AK "AKIDEXAMPLE"
#define SUITE_SK "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_PREFIX                                                                               \
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "            \
    "SignedHeaders=host;x-amz-date, Signature="

static void suite_case(const char *method, const char *query, const char *sig)
{
    hc_sigv4_req r = {.method = method,
                      .path = "/",
                      .query = query,
                      .host = "example.amazonaws.com",
                      .amz_date = "20150830T123600Z",
                      .region = "us-east-1",
                      .service = "service",
                      .access_key = SUITE_AK,
                      .secret_key = SUITE_SK};
    mr_buf auth = MR_BUF_INIT;
    ck_assert_int_eq(hc_sigv4_sign(&r, &auth, NULL, NULL), 0);
    char want[512];
    snprintf(want, sizeof want, "%s%s", SUITE_PREFIX, sig);
    ck_assert_str_eq(auth.data, want);
    mr_buf_free(&auth);
}

START_TEST(sigv4_test_suite)
{
    /* aws-sig-v4-test-suite: get-vanilla, post-vanilla, get-vanilla-query-order-key-case. */
    suite_case("GET", NULL, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    suite_case("POST", NULL, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
    suite_case("GET", "Param2=value2&Param1=value1",
               "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}
END_TEST

START_TEST(sigv4_s3_get_object_example)
{
    /* The worked example of the S3 documentation ("GET Object", Range header). */
    hc_sigv4_header h[] = {{"Range", "bytes=0-9"},
                           {"x-amz-content-sha256",
                            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}};
    hc_sigv4_req r = {.method = "GET",
                      .path = "/test.txt",
                      .host = "examplebucket.s3.amazonaws.com",
                      .headers = h,
                      .n_headers = 2,
                      .amz_date = "20130524T000000Z",
                      .region = "us-east-1",
                      .service = "s3",
                      .access_key = "AKIAIOSFODNN7EXAMPLE",
                      .secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"};
    mr_buf auth = MR_BUF_INIT, creq = MR_BUF_INIT, sts = MR_BUF_INIT;
    hc_sigv4_sign(&r, &auth, &creq, &sts);
    ck_assert_str_eq(
        creq.data,
        "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
        "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
        "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ck_assert_str_eq(sts.data,
                     "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
                     "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    ck_assert_str_eq(
        auth.data,
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    mr_buf_free(&auth);
    mr_buf_free(&creq);
    mr_buf_free(&sts);
    char d[17];
    hc_sigv4_amz_date(1440938160, d);
    ck_assert_str_eq(d, "20150830T123600Z");
    /* A time the format cannot hold (year 10000, or beyond gmtime) is an
     * empty date, which the provider refuses, never stale bytes. */
    static const long long beyond[] = {253402300800LL, 0x7fffffffffffffffLL};
    for (size_t i = 0; i < sizeof beyond / sizeof beyond[0]; i++) {
        memset(d, 'x', sizeof d);
        hc_sigv4_amz_date(beyond[i], d);
        ck_assert_msg(d[0] == '\0', "%lld gave \"%.17s\"", beyond[i], d);
    }
}
END_TEST

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    mr_buf b = MR_BUF_INIT;
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        mr_buf_append(&b, tmp, n);
    (void)fclose(f); /* opened to read only */
    return b.data;
}

START_TEST(route53_golden_body)
{
    mr_regions *r = load3();
    hc_dns_plan p;
    bool eu_down[3] = {false, true, true};
    hc_dns_plan_build(&p, r, eu_down, NULL);
    mr_buf body = MR_BUF_INIT;
    hc_dns_route53_body(&p, "meridian-healthcheck", &body);
    char *golden = slurp(FIXTURE("route53_eu_down.xml"));
    /* The golden file ends with a newline for editors; the body does not. */
    size_t gl = strlen(golden);
    while (gl && golden[gl - 1] == '\n')
        golden[--gl] = '\0';
    ck_assert_str_eq(body.data, golden);
    free(golden);
    /* The request adds each region name's simple A record to the same batch. */
    mr_buf req = MR_BUF_INIT;
    hc_dns_route53_request(&p, "meridian-healthcheck", &req);
    ck_assert_ptr_nonnull(strstr(req.data, "<Change><Action>UPSERT</Action><ResourceRecordSet>"
                                           "<Name>eu-west.ws.meridian.test.</Name><Type>A</Type>"
                                           "<TTL>5</TTL><ResourceRecords><ResourceRecord><Value>"
                                           "127.1.0.1</Value></ResourceRecord><ResourceRecord>"
                                           "<Value>127.1.0.2</Value></ResourceRecord>"));
    ck_assert_int_eq(strncmp(req.data, body.data,
                             body.len - strlen("</Changes></ChangeBatch>"
                                               "</ChangeResourceRecordSetsRequest>")),
                     0);
    mr_buf_free(&req);
    mr_buf_free(&body);
    hc_dns_plan_free(&p);
    mr_regions_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("healthcheck-unit");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, fsm_blip_does_not_flip);
    tcase_add_test(tc, fsm_intermittent_failures_add_up);
    tcase_add_test(tc, fsm_down_after_consecutive_failures);
    tcase_add_test(tc, fsm_comes_back_slower);
    tcase_add_test(tc, fsm_unknown_start);
    tcase_add_test(tc, quorum_majority_of_live_agents);
    tcase_add_test(tc, quorum_unknown_votes_for_nobody);
    tcase_add_test(tc, plan_failover_and_fail_open);
    tcase_add_test(tc, plan_drops_relays_leaving_service);
    tcase_add_test(tc, pdns_lua_record);
    tcase_add_test(tc, sigv4_test_suite);
    tcase_add_test(tc, sigv4_s3_get_object_example);
    tcase_add_test(tc, route53_golden_body);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
