//! Derive macros of `coherent`, re-exported by `coherent-core` (use them from there).
//!
//! * `#[derive(PluginConfig)]` on a plugin's config struct writes its parameter docs — the
//!   ones `coherent plugins` prints — from the struct itself: each field's name (serde's
//!   `rename` respected), its doc comment, its type (`ParamType::type_name`, or
//!   `#[param(ty = "...")]`) and its default, taken from the same `#[serde(default ...)]`
//!   attribute serde uses, so the documented default cannot drift from the real one.
//!   `#[param(default = "...")]` words a default that is not a plain value (`"all"`).
//! * `#[derive(ParamType)]` on an enum of unit variants documents it as its choices
//!   (`"relu" | "tanh"`), spelled as serde spells them (`rename_all`, `rename`).

use proc_macro::TokenStream;
use proc_macro2::TokenStream as Tokens;
use quote::quote;
use syn::{parse_macro_input, Attribute, Data, DeriveInput, Expr, Fields, Lit, Meta};

/// Implements `coherent_core::PluginConfig` (see the crate docs).
#[proc_macro_derive(PluginConfig, attributes(param))]
pub fn derive_plugin_config(input: TokenStream) -> TokenStream {
    derive(input, expand_config)
}

/// Implements `coherent_core::ParamType` for an enum of unit variants (see the crate docs).
#[proc_macro_derive(ParamType)]
pub fn derive_param_type(input: TokenStream) -> TokenStream {
    derive(input, expand_enum)
}

/// The output of `expand` for the item `input`, or its error as a compile error.
fn derive(input: TokenStream, expand: fn(&DeriveInput) -> syn::Result<Tokens>) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// What a `#[serde(...)]` or `#[param(...)]` attribute says.
#[derive(Default)]
struct Options {
    rename: Option<String>,
    rename_all: Option<String>,
    /// `Some(None)`: `#[serde(default)]`; `Some(Some(path))`: `#[serde(default = "path")]`.
    default: Option<Option<String>>,
    skip: bool,
    ty: Option<String>,
    default_text: Option<String>,
}

fn string_of(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Lit(lit) => match &lit.lit {
            Lit::Str(s) => Some(s.value()),
            _ => None,
        },
        _ => None,
    }
}

fn options(attrs: &[Attribute]) -> syn::Result<Options> {
    let mut o = Options::default();
    for attr in attrs {
        let serde = attr.path().is_ident("serde");
        if !serde && !attr.path().is_ident("param") {
            continue;
        }
        attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(|i| i.to_string())
                .unwrap_or_default();
            let value = if meta.input.peek(syn::Token![=]) {
                let expr: Expr = meta.value()?.parse()?;
                string_of(&expr)
            } else {
                // a key without a value, or a nested list we do not read
                if meta.input.peek(syn::token::Paren) {
                    let _ = meta.input.step(|c| {
                        let mut rest = *c;
                        while let Some((_, next)) = rest.token_tree() {
                            rest = next;
                        }
                        Ok(((), rest))
                    });
                }
                None
            };
            match (serde, key.as_str()) {
                (true, "rename") => o.rename = value,
                (true, "rename_all") => o.rename_all = value,
                (true, "default") => o.default = Some(value),
                (true, "skip") | (true, "skip_deserializing") => o.skip = true,
                (false, "ty") => o.ty = value,
                (false, "default") => o.default_text = value,
                (false, _) => {
                    return Err(meta.error("expected `ty = \"...\"` or `default = \"...\"`"))
                }
                _ => {}
            }
            Ok(())
        })?;
    }
    Ok(o)
}

fn doc_of(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            Meta::NameValue(nv) => string_of(&nv.value),
            _ => None,
        })
        .map(|l| l.trim().to_string())
        .collect();
    // the first paragraph, on one line
    let paragraph: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .take_while(|l| !l.is_empty())
        .collect();
    paragraph.join(" ")
}

/// The error `message`, at the tokens of `at`.
fn refuse<T>(at: impl quote::ToTokens, message: &str) -> syn::Result<T> {
    Err(syn::Error::new_spanned(at, message))
}

fn expand_config(input: &DeriveInput) -> syn::Result<Tokens> {
    let name = &input.ident;
    let Data::Struct(data) = &input.data else {
        return refuse(name, "PluginConfig needs a struct");
    };
    let Fields::Named(fields) = &data.fields else {
        return refuse(name, "PluginConfig needs named fields");
    };
    let container = options(&input.attrs)?;
    let mut docs = Vec::new();
    for field in &fields.named {
        let o = options(&field.attrs)?;
        if o.skip {
            continue;
        }
        let ident = field.ident.as_ref().expect("named field");
        let ty = &field.ty;
        let key = o.rename.clone().unwrap_or_else(|| {
            let raw = ident.to_string();
            raw.strip_prefix("r#").unwrap_or(&raw).to_string()
        });
        let doc = doc_of(&field.attrs);
        let ty_text = match &o.ty {
            Some(t) => quote!(::std::string::String::from(#t)),
            None => quote!(<#ty as ::coherent_core::ParamType>::type_name()),
        };
        let default = match (&o.default_text, &o.default, &container.default) {
            (Some(text), _, _) => quote!(::std::string::String::from(#text)),
            (None, Some(Some(path)), _) => {
                let path: syn::ExprPath = syn::parse_str(path)?;
                quote!(::coherent_core::ParamType::render(&#path()))
            }
            (None, Some(None), _) => {
                quote!(::coherent_core::ParamType::render(&<#ty as ::std::default::Default>::default()))
            }
            (None, None, Some(_)) => {
                quote!(::coherent_core::ParamType::render(&<#name as ::std::default::Default>::default().#ident))
            }
            (None, None, None) => quote!(::std::string::String::from("required")),
        };
        docs.push(quote! {
            ::coherent_core::ParamDoc {
                name: #key,
                ty: #ty_text,
                default: #default,
                doc: ::std::string::String::from(#doc),
            }
        });
    }
    let (imp, generics, clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #imp ::coherent_core::PluginConfig for #name #generics #clause {
            fn params() -> ::std::vec::Vec<::coherent_core::ParamDoc> {
                ::std::vec![#(#docs),*]
            }
        }
    })
}

/// `ident` spelled under serde's `rename_all` rule.
fn rename(ident: &str, rule: Option<&str>) -> String {
    let snake = {
        let mut out = String::new();
        for (k, c) in ident.chars().enumerate() {
            if c.is_uppercase() && k > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        }
        out
    };
    match rule {
        Some("snake_case") => snake,
        Some("kebab-case") => snake.replace('_', "-"),
        Some("lowercase") => ident.to_lowercase(),
        Some("UPPERCASE") => ident.to_uppercase(),
        Some("SCREAMING_SNAKE_CASE") => snake.to_uppercase(),
        _ => ident.to_string(),
    }
}

fn expand_enum(input: &DeriveInput) -> syn::Result<Tokens> {
    let name = &input.ident;
    let Data::Enum(data) = &input.data else {
        return refuse(name, "ParamType can be derived for enums only");
    };
    let container = options(&input.attrs)?;
    let mut arms = Vec::new();
    let mut spelled = Vec::new();
    for variant in &data.variants {
        if !matches!(variant.fields, Fields::Unit) {
            return refuse(variant, "ParamType needs unit variants");
        }
        let o = options(&variant.attrs)?;
        let text = o
            .rename
            .unwrap_or_else(|| rename(&variant.ident.to_string(), container.rename_all.as_deref()));
        let quoted = format!("\"{text}\"");
        let ident = &variant.ident;
        arms.push(quote!(#name::#ident => ::std::string::String::from(#quoted)));
        spelled.push(quoted);
    }
    let choices = spelled.join(" | ");
    Ok(quote! {
        impl ::coherent_core::ParamType for #name {
            fn type_name() -> ::std::string::String {
                ::std::string::String::from(#choices)
            }
            fn render(&self) -> ::std::string::String {
                match self {
                    #(#arms),*
                }
            }
        }
    })
}
