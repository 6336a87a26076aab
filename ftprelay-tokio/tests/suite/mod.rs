//! The conformance suite: every interoperability and fault test, written
//! once, run against every adapter. A test binary that includes this module
//! defines `launch` (how to start a relay on each runtime it tests) and
//! `proto` (the core, as its adapter re-exports it), then calls
//! `conformance_tests!("runtime name")` once per runtime, each in a module of
//! its own.

#![allow(dead_code, unreachable_pub)]

pub mod clients;
pub mod devices;
pub mod faults;
pub mod hostile;
pub mod logs;
pub mod spool;
pub mod support;
pub mod tls;
pub mod tls_data;
pub mod tls_uploads;

/// One `#[tokio::test]` per test of the suite, each run with the relay on
/// `$runtime` (the test clients always run on tokio).
#[allow(unused_macros)] // the log-test binaries use the suite's support only
macro_rules! conformance_tests {
    ($runtime:expr) => {
        $crate::suite::conformance_tests!(@each $runtime;
            clients::curl_epsv,
            clients::curl_pasv,
            clients::curl_active,
            clients::curl_reports_a_processor_failure,
            clients::python_ftplib_passive,
            clients::python_ftplib_active,
            clients::lftp_put_and_mput,
            clients::busybox_ftpput,
            faults::a_processor_failure_is_451_and_a_rejection_550,
            faults::a_processor_panic_is_451_and_the_relay_keeps_serving,
            faults::a_data_connection_reset_mid_upload_is_426_and_never_processed,
            faults::the_control_connection_dropped_mid_upload_leaves_nothing,
            faults::abor_mid_upload_is_426_then_226,
            faults::an_upload_over_the_size_limit_is_552,
            faults::two_hundred_logins_without_upload_leave_nothing,
            faults::one_user_in_twenty_sessions_uploading_five_files_each,
            faults::a_slow_processor_delays_no_other_session,
            faults::reading_and_changing_stored_files_is_refused,
            faults::a_passive_connection_from_another_address_is_refused,
            faults::ipv6_on_the_loopback,
            faults::shutdown_during_an_upload_still_answers_it,
            faults::connections_over_the_limits_are_answered_421,
            faults::an_exhausted_passive_port_range_is_425,
            faults::the_advertised_passive_address_is_used,
            faults::the_spool_sweep_removes_only_the_relays_own_leftovers,
            faults::a_stalled_data_connection_is_426,
            faults::a_data_connection_stalled_past_its_first_chunk_is_426,
            faults::a_client_that_pipelines_and_half_closes_gets_every_reply,
            faults::abor_with_a_telnet_synch_in_urgent_data,
            faults::a_second_relay_on_the_same_spool_is_refused_and_sweeps_nothing,
            faults::a_relay_that_cannot_listen_leaves_the_spool_alone,
            faults::sessions_left_after_the_shutdown_grace_period_are_dropped,
            devices::busybox_ftpput_with_a_full_path,
            devices::yi_hack_pipelines_mkd_before_reading_the_greeting,
            devices::esp32_cam_sequence,
            devices::curl_create_dirs_with_each_ftp_method,
            devices::lftp_puts_to_a_temporary_name_then_renames,
            devices::rclone_with_parallel_connections_uploads_each_file_once,
            devices::windows_ftp_exe_sequence,
            devices::fluentftp_sizes_before_uploading,
            devices::motioneye_lists_each_folder_and_tests_mkd_rmd,
            devices::legacy_quirks,
            devices::intellinet_deletes_uploads_to_a_temporary_name_and_renames,
            devices::a_test_upload_then_deleted_is_never_processed,
            devices::auth_tls_refused_then_a_plain_login,
            devices::the_strict_profile_still_refuses_all_this,
            hostile::over_long_lines_get_one_500,
            hostile::nul_bytes,
            hostile::cr_or_lf_injected_into_names,
            hostile::telnet_sequences,
            hostile::path_traversal_never_leaves_the_root,
            hostile::port_and_eprt_to_third_hosts_and_privileged_ports,
            hostile::non_utf8_names,
            hostile::the_spool_file_system_full_during_an_upload,
            hostile::a_processor_that_hangs_past_its_timeout,
            hostile::a_client_that_stops_reading_replies,
            hostile::a_flood_beyond_max_connections,
            hostile::a_line_that_trickles_in_is_cut_off,
            hostile::a_connection_that_never_logs_in_is_closed,
            hostile::an_address_that_fails_too_often_is_locked_out,
            spool::a_symbolic_link_at_the_lock_path_is_refused_and_creates_nothing,
            spool::a_fifo_at_the_lock_path_is_refused_without_hanging,
            spool::the_sweep_unlinks_a_planted_link_named_like_a_spool_file_and_never_follows_it,
            spool::the_private_spool_directory_is_0700,
            spool::a_planted_fifo_lock_in_the_temp_dir_does_not_hang_the_start,
            hostile::a_trickled_upload_is_cut_off_by_the_minimum_rate,
            tls::curl_ssl_reqd,
            tls::curl_ftp_ssl,
            tls::curl_implicit_ftps,
            tls::lftp_with_ssl_force,
            tls::python_ftp_tls_with_prot_p,
            tls::a_plain_client_is_refused_when_tls_is_required,
            tls::a_broken_handshake_on_the_data_channel_is_answered,
            tls_data::empty_listings_over_tls_succeed,
            tls_data::implicit_ftps_without_prot_protects_data,
            tls_data::a_client_that_handshakes_before_stor_uploads,
            tls_data::required_session_reuse_refuses_data_connections_that_do_not_resume,
            tls_data::without_the_switch_data_connections_need_not_resume,
            tls_uploads::curl_fifty_uploads_tls13,
            tls_uploads::curl_fifty_uploads_tls12,
            tls_uploads::lftp_fifty_uploads_tls13,
            tls_uploads::lftp_fifty_uploads_tls12,
            tls_uploads::python_ftplib_fifty_uploads_tls13,
            tls_uploads::python_ftplib_fifty_uploads_tls12,
            tls_uploads::a_client_that_closes_at_once_fifty_uploads_tls13,
            tls_uploads::a_client_that_closes_at_once_fifty_uploads_tls12,
        );
    };
    (@each $runtime:expr; $($module:ident :: $name:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::suite::support::RUNTIME
                    .scope($runtime, $crate::suite::$module::$name())
                    .await
            }
        )*
    };
}
#[allow(unused_imports)]
pub(crate) use conformance_tests;
